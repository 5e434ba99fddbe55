/* lt_safetensors.h — safetensors files (the Hugging Face format PyTorch users
 * load with safetensors.torch.load_file, or read by hand in ten lines).
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the
 * byte buffer. The JSON maps each tensor name to {"dtype", "shape",
 * "data_offsets": [begin, end]} (offsets into the byte buffer) and may hold
 * "__metadata__", an object of string -> string. Tensors are row-major,
 * little-endian, and tile the buffer exactly (no gaps, no overlap), as the
 * reference implementation requires. We write the header padded with
 * spaces to a multiple of 8 bytes so every tensor starts 8-aligned.
 *
 * Only F32 and I64 are written and read (model weights and BN's
 * num_batches_tracked); any other dtype is refused by name. The reader
 * treats the file as untrusted: header length bounds, JSON syntax, key
 * uniqueness, dtype, shape and offset consistency, and the tiling are
 * checked before anything is returned. Not part of lt.h (it needs cJSON). */
#ifndef LT_SAFETENSORS_H
#define LT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "lt_base.h"

#define LT_ST_MAX_DIMS 8
#define LT_ST_NAME_MAX 192
/* A header larger than this is refused before it is read (100 MB, the
 * reference implementation's limit). */
#define LT_ST_MAX_HEADER (100u * 1000u * 1000u)

typedef enum { LT_ST_F32 = 0, LT_ST_I64 = 1 } lt_st_dtype;

typedef struct {
    char name[LT_ST_NAME_MAX];
    lt_st_dtype dtype;
    int ndim;                       /* 0 = scalar (one element) */
    int64_t shape[LT_ST_MAX_DIMS];
    /* Writer: the elements in host order (float or int64_t), count =
     * product of shape. Reader: points into the file's buffer, little-endian
     * and possibly unaligned: use lt_st_read_f32 / lt_st_read_i64. */
    const void *data;
    size_t bytes;
} lt_st_tensor;

/* A metadata pair for the writer. */
typedef struct { const char *key, *value; } lt_st_meta;

size_t lt_st_dtype_size(lt_st_dtype d);
const char *lt_st_dtype_name(lt_st_dtype d);
/* Number of elements of a tensor (1 for a scalar). */
size_t lt_st_numel(const lt_st_tensor *t);

/* Encodes tensors (in the given order) and metadata into a malloc'd buffer;
 * LT_EINVAL naming the tensor for a duplicate or empty name, a dtype not
 * supported or a shape inconsistent with `bytes`. */
int lt_st_encode(const lt_st_tensor *t, int n, const lt_st_meta *meta, int n_meta, uint8_t **buf,
                 size_t *len);
/* lt_st_encode written atomically (lt_io writer) to path. */
int lt_st_write(const char *path, const lt_st_tensor *t, int n, const lt_st_meta *meta, int n_meta);

typedef struct lt_st_file lt_st_file;
/* Parses and validates a whole file image (copied); `what` names it in
 * errors ("x.safetensors"). LT_EDATA with the problem on anything invalid. */
int lt_st_parse(lt_st_file **f, const void *buf, size_t len, const char *what);
/* Reads and parses a file (LT_EIO naming it when unreadable). */
int lt_st_read(lt_st_file **f, const char *path);
int lt_st_count(const lt_st_file *f);
const lt_st_tensor *lt_st_at(const lt_st_file *f, int i);      /* file order (by offset) */
const lt_st_tensor *lt_st_find(const lt_st_file *f, const char *name);  /* NULL if absent */
/* A metadata value, NULL if absent. */
const char *lt_st_meta_get(const lt_st_file *f, const char *key);
/* Copies tensor `name` as host floats / int64s; LT_EDATA naming it when it is
 * absent, of another dtype or does not hold exactly `count` elements. */
int lt_st_get_f32(const lt_st_file *f, const char *name, float *dst, size_t count);
int lt_st_get_i64(const lt_st_file *f, const char *name, int64_t *dst, size_t count);
void lt_st_free(lt_st_file *f);

#endif
