/* lt_strmap.c — a small open-addressing hash map from C strings to longs.
 *
 * Used to match millions of list paths against archive members and to spot
 * duplicate paths. Keys are not copied: the caller keeps them alive for the
 * map's lifetime (they normally point into a list file's own storage). */
#include "lt_imagesets.h"

#include <stdlib.h>
#include <string.h>

static uint64_t strmap_hash(const char *s)
{
    /* FNV-1a 64: fast, good enough spread for path strings. */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

int lt_strmap_init(lt_strmap *m, size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2 + 1)
        cap <<= 1;
    m->cap = cap;
    m->n = 0;
    m->key = calloc(cap, sizeof *m->key);
    m->val = calloc(cap, sizeof *m->val);
    if (!m->key || !m->val) {
        lt_strmap_free(m);
        return lt_err(LT_ENOMEM, "hash map: cannot allocate %zu slots", cap);
    }
    return LT_OK;
}

void lt_strmap_free(lt_strmap *m)
{
    free(m->key);
    free(m->val);
    m->key = NULL;
    m->val = NULL;
    m->cap = m->n = 0;
}

static int strmap_grow(lt_strmap *m)
{
    lt_strmap big;
    LT_TRY(lt_strmap_init(&big, m->cap));
    for (size_t i = 0; i < m->cap; i++)
        if (m->key[i]) {
            size_t j = strmap_hash(m->key[i]) & (big.cap - 1);
            while (big.key[j])
                j = (j + 1) & (big.cap - 1);
            big.key[j] = m->key[i];
            big.val[j] = m->val[i];
            big.n++;
        }
    lt_strmap_free(m);
    *m = big;
    return LT_OK;
}

int lt_strmap_put(lt_strmap *m, const char *key, long val, long *existing)
{
    if (existing)
        *existing = -1;
    /* Keep the load factor below 1/2 so probe chains stay short. */
    if ((m->n + 1) * 2 > m->cap)
        LT_TRY(strmap_grow(m));
    size_t j = strmap_hash(key) & (m->cap - 1);
    while (m->key[j]) {
        if (strcmp(m->key[j], key) == 0) {
            if (existing)
                *existing = m->val[j];
            return LT_OK;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->key[j] = key;
    m->val[j] = val;
    m->n++;
    return LT_OK;
}

long lt_strmap_get(const lt_strmap *m, const char *key)
{
    if (!m->cap)
        return -1;
    size_t j = strmap_hash(key) & (m->cap - 1);
    while (m->key[j]) {
        if (strcmp(m->key[j], key) == 0)
            return m->val[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}
