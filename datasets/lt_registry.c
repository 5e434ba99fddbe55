/* lt_registry.c — every dataset the harness knows: files, URLs, pinned
 * hashes, expected sizes, and the reader that turns the verified files into
 * lt_datasets.
 *
 * Hashes and sizes are copied from specs/datasets.md (section noted per
 * entry). Where only a publisher md5 exists (ImageNet, Places365 tars) the
 * file has no pinned sha256: it is checked against that md5 (a cut or
 * spliced download fails it), and its sha256 is computed once and recorded
 * in the manifest.
 * The definitions are plain data so a test can copy one and swap in its own
 * fixture hashes and URLs (see lt_datasets.h). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "lt_ckpt.h"
#include "lt_datasets.h"
#include "lt_extract.h"
#include "lt_imagesets.h"

/* ---- readers --------------------------------------------------------------------- */
static int read_fmnist(const lt_ds_src *s, lt_dataset *train, lt_dataset *test, cJSON *extra)
{
    (void)extra;
    int rc = lt_idx_load(s->path[0], s->path[1], s->def->n_classes, train);
    if (rc) return rc;
    rc = lt_idx_load(s->path[2], s->path[3], s->def->n_classes, test);
    if (rc) lt_dataset_free(train);
    return rc;
}

static int read_cifar(const lt_ds_src *s, lt_dataset *train, lt_dataset *test, lt_cifar_kind kind)
{
    return lt_cifar_read_archive(s->path[0], kind, s->def->n_train, s->def->n_test, train, test);
}
static int read_cifar10(const lt_ds_src *s, lt_dataset *train, lt_dataset *test, cJSON *extra)
{
    (void)extra;
    return read_cifar(s, train, test, LT_CIFAR10);
}
static int read_cifar100(const lt_ds_src *s, lt_dataset *train, lt_dataset *test, cJSON *extra)
{
    (void)extra;
    return read_cifar(s, train, test, LT_CIFAR100);
}


/* A list + image archive pair -> dataset (ImageNet-LT, Places-LT, iNat). */
static int build_from_list(const lt_ds_src *s, const lt_listfile *lf, const char *archive, lt_pathmap map,
                           lt_dataset *d)
{
    lt_progress prog;
    const char *arch[1] = {archive};
    lt_imagelist_src src;
    memset(&src, 0, sizeof src);
    src.list = lf;
    src.map = map;
    src.size = s->side;
    src.archives = arch;
    src.n_archives = 1;
    src.progress = lt_ds_progress(s->def, s->opts, &prog);
    return lt_imagelist_build(d, &src);
}

/* Two lists whose images share one archive, read in one pass over it. */
static int build_two_from_list(const lt_ds_src *s, const lt_listfile *a, const lt_listfile *b, const char *archive,
                               lt_pathmap map, lt_dataset *da, lt_dataset *db)
{
    lt_progress prog;
    const char *arch[1] = {archive};
    lt_imagelist_src src;
    memset(&src, 0, sizeof src);
    src.map = map;
    src.size = s->side;
    src.archives = arch;
    src.n_archives = 1;
    src.progress = lt_ds_progress(s->def, s->opts, &prog);
    const lt_listfile *lists[2] = {a, b};
    lt_dataset both[2];
    int rc = lt_imagelist_build_many(both, lists, 2, &src);
    if (!rc) {
        *da = both[0];
        *db = both[1];
    }
    return rc;
}

/* Records the train list's sha256 as the index-list hash: for a published
 * long-tailed set the list *is* the selection. */
static int note_list_hash(const lt_listfile *lf, cJSON *extra, const char *key)
{
    char *text = NULL, hex[65];
    size_t len = 0;
    LT_TRY(lt_listfile_format(lf, &text, &len));
    lt_sha256_buf(text, len, hex);
    free(text);
    cJSON_AddStringToObject(extra, key, hex);
    return LT_OK;
}

/* LT_EDATA naming both lists and lines if a path of `val` is also in `other`:
 * a validation image must be neither a training nor a test image. */
static int lists_disjoint(const lt_listfile *val, const lt_listfile *other)
{
    lt_strmap m;
    LT_TRY(lt_strmap_init(&m, (size_t)other->n * 2 + 1));
    int rc = LT_OK;
    for (long i = 0; !rc && i < other->n; i++) rc = lt_strmap_put(&m, other->path[i], i, NULL);
    for (long j = 0; !rc && j < val->n; j++) {
        long k = lt_strmap_get(&m, val->path[j]);
        if (k >= 0)
            rc = lt_err(LT_EDATA, "%s:%ld: %s is also line %ld of %s: a validation image must be neither a "
                        "training nor a test image", val->name, j + 1, val->path[j], k + 1, other->name);
    }
    lt_strmap_free(&m);
    return rc;
}

/* The official val list (files[4]), checked against the train and test lists. */
static int read_val_list(const lt_ds_src *s, const lt_listfile *tr, const lt_listfile *te, lt_listfile *va)
{
    LT_TRY(lt_listfile_read(va, s->path[4]));
    int rc = lists_disjoint(va, tr);
    if (!rc) rc = lists_disjoint(va, te);
    return rc;
}

/* files: [0] train list, [1] test list, [2] train image archive, [3] test image
 * archive, [4] the official val list (images in the train archive). */
static int read_list_dataset(const lt_ds_src *s, lt_dataset *train, lt_dataset *test, cJSON *extra, lt_pathmap map)
{
    lt_listfile tr, te, va;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    memset(&va, 0, sizeof va);
    int rc = lt_listfile_read(&tr, s->path[0]);
    if (!rc) rc = lt_listfile_read(&te, s->path[1]);
    if (!rc) rc = note_list_hash(&tr, extra, "index_sha256");
    if (!rc && s->val) rc = read_val_list(s, &tr, &te, &va);
    if (!rc && s->val) {
        /* train and val images share the train archive (ImageNet: 140 GB): one pass */
        rc = build_two_from_list(s, &tr, &va, s->path[2], map, train, s->val);
    } else if (!rc) {
        rc = build_from_list(s, &tr, s->path[2], map, train);
    }
    if (!rc) {
        rc = build_from_list(s, &te, s->path[3], map, test);
        if (rc) {
            lt_dataset_free(train);
            if (s->val) lt_dataset_free(s->val);
        }
    }
    lt_listfile_free(&tr);
    lt_listfile_free(&te);
    lt_listfile_free(&va);
    return rc;
}
static int read_imagenet_lt(const lt_ds_src *s, lt_dataset *train, lt_dataset *test, cJSON *extra)
{
    return read_list_dataset(s, train, test, extra, LT_PATHMAP_BASENAME);
}
static int read_places_lt(const lt_ds_src *s, lt_dataset *train, lt_dataset *test, cJSON *extra)
{
    return read_list_dataset(s, train, test, extra, LT_PATHMAP_PLACES365);
}

/* The val images alone (one pass over the train archive). */
static int read_list_val(const lt_ds_src *s, lt_dataset *val, lt_pathmap map)
{
    lt_listfile tr, te, va;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    memset(&va, 0, sizeof va);
    int rc = lt_listfile_read(&tr, s->path[0]);
    if (!rc) rc = lt_listfile_read(&te, s->path[1]);
    if (!rc) rc = read_val_list(s, &tr, &te, &va);
    if (!rc) rc = build_from_list(s, &va, s->path[2], map, val);
    lt_listfile_free(&tr);
    lt_listfile_free(&te);
    lt_listfile_free(&va);
    return rc;
}
static int read_imagenet_lt_val(const lt_ds_src *s, lt_dataset *val)
{
    return read_list_val(s, val, LT_PATHMAP_BASENAME);
}
static int read_places_lt_val(const lt_ds_src *s, lt_dataset *val)
{
    return read_list_val(s, val, LT_PATHMAP_PLACES365);
}

/* Reads the first member of `archive` whose name ends in ".json". */
typedef struct {
    char *buf;
    size_t len;
    char name[512];
    int found;
} json_member;

static int take_json(void *ctx, const char *name, int64_t size, lt_archive_member *m)
{
    json_member *j = ctx;
    size_t n = strlen(name);
    if (n < 5 || strcmp(name + n - 5, ".json")) return LT_OK;
    size_t cap = size > 0 ? (size_t)size + 1 : (size_t)1 << 24, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) return lt_err(LT_ENOMEM, "%s: out of memory reading %s", j->name, name);
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) free(buf);
            buf = nb;
            cap *= 2;
            continue;
        }
        size_t got = 0;
        int rc = lt_archive_member_read(m, buf + len, cap - len - 1, &got);
        if (rc) {
            free(buf);
            return rc;
        }
        if (got == 0) break;
        len += got;
    }
    buf[len] = '\0';
    j->buf = buf;
    j->len = len;
    snprintf(j->name, sizeof j->name, "%s", name);
    j->found = 1;
    return LT_ARCHIVE_STOP;
}

static int read_json_member(const char *archive, json_member *j)
{
    memset(j, 0, sizeof *j);
    snprintf(j->name, sizeof j->name, "%s", archive);
    LT_TRY(lt_archive_foreach(archive, take_json, j));
    if (!j->found) return lt_err(LT_EDATA, "archive %s holds no .json member", archive);
    return LT_OK;
}

/* files: [0] train2018.json.tar.gz, [1] val2018.json.tar.gz, [2] train_val2018.tar.gz */
static int read_inat2018(const lt_ds_src *s, lt_dataset *train, lt_dataset *test, cJSON *extra)
{
    lt_listfile tr, te;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    json_member j;
    int rc = read_json_member(s->path[0], &j);
    if (!rc) {
        rc = lt_inat_list_from_json_buf(&tr, j.name, j.buf, j.len);
        free(j.buf);
    }
    if (!rc && !(rc = read_json_member(s->path[1], &j))) {
        rc = lt_inat_list_from_json_buf(&te, j.name, j.buf, j.len);
        free(j.buf);
    }
    if (!rc) rc = note_list_hash(&tr, extra, "index_sha256");
    /* Self-test of §6.4: the regenerated val list should equal the
     * classifier-balancing iNaturalist18_val.txt (sha256 efaeff65...). */
    if (!rc) rc = note_list_hash(&te, extra, "test_list_sha256");
    if (!rc) {
        const char *h = cJSON_GetObjectItem(extra, "test_list_sha256")->valuestring;
        cJSON_AddBoolToObject(extra, "test_list_matches_classifier_balancing",
                              !strcmp(h, "efaeff65f80641b60864470e6f255aa69453406ef5717eec8c6681748f3a61f3"));
    }
    if (!rc) {
        /* train and val images share train_val2018.tar.gz (128 GB): one pass */
        rc = build_two_from_list(s, &tr, &te, s->path[2], LT_PATHMAP_NONE, train, test);
    }
    lt_listfile_free(&tr);
    lt_listfile_free(&te);
    return rc;
}

/* files: [0] lvis_v1_train.json.zip, [1] lvis_v1_val.json.zip, [2] train2017.zip, [3] val2017.zip */
static int read_lvis(const lt_ds_src *s, lt_dataset *train, lt_dataset *test, cJSON *extra)
{
    lt_lvis_params p;
    lt_lvis_params_default(&p);
    p.crop_size = s->side;
    lt_lvis_subset str, ste;
    memset(&str, 0, sizeof str);
    memset(&ste, 0, sizeof ste);
    int nc = 0;
    char *group = NULL;
    json_member j;
    int rc = read_json_member(s->path[0], &j);
    if (!rc) {
        rc = lt_lvis_categories(j.name, j.buf, j.len, &nc, &group);
        if (!rc && nc != s->def->n_classes)
            rc = lt_err(LT_EDATA, "%s: %d categories, expected %d", j.name, nc, s->def->n_classes);
        if (!rc) rc = lt_lvis_select_buf(&str, j.name, j.buf, j.len, LT_LVIS_TRAIN, &p, nc, group);
        free(j.buf);
    }
    if (!rc && !(rc = read_json_member(s->path[1], &j))) {
        rc = lt_lvis_select_buf(&ste, j.name, j.buf, j.len, LT_LVIS_VAL, &p, nc, group);
        free(j.buf);
    }
    const char *images[2] = {s->path[2], s->path[3]};
    if (!rc) {
        /* train and test crops in one pass over the image zips (19 GB) */
        const lt_lvis_subset *sets[2] = {&str, &ste};
        lt_dataset both[2];
        lt_progress prog;
        rc = lt_lvis_build_many(both, sets, 2, &p, images, 2, lt_ds_progress(s->def, s->opts, &prog));
        if (!rc) {
            *train = both[0];
            *test = both[1];
        }
    }
    if (!rc) {
        cJSON_AddStringToObject(extra, "protocol", LT_LVIS_PROTOCOL);
        cJSON_AddStringToObject(extra, "index_sha256", str.sha256);
        cJSON_AddStringToObject(extra, "test_index_sha256", ste.sha256);
        char *rep = NULL;
        if (lt_lvis_report_json(&str, &ste, &p, &rep) == LT_OK) {
            cJSON *r = cJSON_Parse(rep);
            if (r) cJSON_AddItemToObject(extra, "report", r);
        }
        free(rep);
    }
    lt_lvis_subset_free(&str);
    lt_lvis_subset_free(&ste);
    free(group);
    return rc;
}

/* ---- the table ------------------------------------------------------------------- */
#define FMNIST_URL "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#define FMNIST_SYS "/usr/share/datasets/fashion-mnist/"
#define CB_RAW "https://raw.githubusercontent.com/facebookresearch/classifier-balancing/" \
               "22370c64141cc662f62ead89447c838c4a7977b5/data/"
/* Split lists shipped with the project: a copy in the repository, else the
 * shared specs folder next to it. */
#define SPLIT(f) "datasets/splits/" f ":shared/data/splits/" f ":../shared/data/splits/" f
#define LVIS_NO_VAL "the LVIS v1 val annotations are the test set of LVIS-LT-cls v1, and a validation split " \
                    "would have to come out of the test set or the long-tailed training crops"

static const lt_ds_def registry[] = {
    {
        /* specs/datasets.md §1.1-§1.5 */
        .name = "cifar10",
        .title = "CIFAR-10 binary -> CIFAR-10-LT (LDAM-DRW subset)",
        .n_classes = 10, .c = 3, .h = 32, .w = 32,
        .n_train = 50000, .n_test = 10000, .n_max = 5000,
        .default_profile = LT_PROFILE_EXP, .default_ir = 100,
        .check_cifar10_sentinels = 1,
        .read = read_cifar10,
        .n_files = 1,
        .files = {{.name = "cifar-10-binary.tar.gz",
                   .url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                   .sha256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                   .md5 = "c32a1d4ab5d03f1284b67883e8d87530", .bytes = 170052171}},
    },
    {
        .name = "cifar100",
        .title = "CIFAR-100 binary (fine labels) -> CIFAR-100-LT (LDAM-DRW subset)",
        .n_classes = 100, .c = 3, .h = 32, .w = 32,
        .n_train = 50000, .n_test = 10000, .n_max = 500,
        .default_profile = LT_PROFILE_EXP, .default_ir = 100,
        .check_cifar100_sentinels = 1,
        .read = read_cifar100,
        .n_files = 1,
        .files = {{.name = "cifar-100-binary.tar.gz",
                   .url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                   .sha256 = "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
                   .md5 = "03b5dce01913d631647c71ecec9e9cb8", .bytes = 168513733}},
    },
    {
        /* §2: upstream .gz sha256 (TFDS) or the decompressed stream's sha256,
         * which Debian's header-normalised copies also match. */
        .name = "fmnist",
        .title = "Fashion-MNIST (Debian package or upstream) -> Fashion-MNIST-LT (harness protocol)",
        .n_classes = 10, .c = 1, .h = 28, .w = 28,
        .n_train = 60000, .n_test = 10000, .n_max = 6000,
        .default_profile = LT_PROFILE_EXP, .default_ir = 100,
        .read = read_fmnist,
        .n_files = 4,
        .files = {
            {.name = "train-images-idx3-ubyte.gz", .url = FMNIST_URL "train-images-idx3-ubyte.gz",
             .sha256 = "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
             .content_sha256 = "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
             .md5 = "8d4fb7e6c68d591d4c3dfef9ec88bf0d", .bytes = 26421880,
             .system_path = FMNIST_SYS "train-images-idx3-ubyte.gz"},
            {.name = "train-labels-idx1-ubyte.gz", .url = FMNIST_URL "train-labels-idx1-ubyte.gz",
             .sha256 = "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
             .content_sha256 = "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
             .md5 = "25c81989df183df01b3e8a0aad5dffbe", .bytes = 29515,
             .system_path = FMNIST_SYS "train-labels-idx1-ubyte.gz"},
            {.name = "t10k-images-idx3-ubyte.gz", .url = FMNIST_URL "t10k-images-idx3-ubyte.gz",
             .sha256 = "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
             .content_sha256 = "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
             .md5 = "bef4ecab320f06d8554ea6380940ec79", .bytes = 4422102,
             .system_path = FMNIST_SYS "t10k-images-idx3-ubyte.gz"},
            {.name = "t10k-labels-idx1-ubyte.gz", .url = FMNIST_URL "t10k-labels-idx1-ubyte.gz",
             .sha256 = "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
             .content_sha256 = "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
             .md5 = "bb300cfdad3c16e7a12a480ee83cd310", .bytes = 5148,
             .system_path = FMNIST_SYS "t10k-labels-idx1-ubyte.gz"},
        },
    },
    {
        /* §3: OLTR lists over ILSVRC-2012; the image tars need an account. */
        .name = "imagenet_lt",
        .title = "ImageNet-LT (OLTR lists over ILSVRC-2012; images decoded to side x side)",
        .n_classes = 1000, .c = 3, .side = {32, 64, 224},
        .n_train = 115846, .n_test = 50000, .n_max = 0,
        .default_profile = LT_PROFILE_NATURAL,
        .read = read_imagenet_lt,
        .n_files = 5,
        .files = {
            {.name = "ImageNet_LT_train.txt", .url = CB_RAW "ImageNet_LT/ImageNet_LT_train.txt",
             .sha256 = "efdbdad4f050237c310b2f354cf95a8b1d7c8d57a63c4ea4bb6bf2bcb012f37f", .bytes = 4658674,
             .system_path = SPLIT("ImageNet_LT_train.txt")},
            {.name = "ImageNet_LT_test.txt", .url = CB_RAW "ImageNet_LT/ImageNet_LT_test.txt",
             .sha256 = "d1590191cf8a71fada7b1aaedaa2d139a2aea93ff2f1b755319d0bd8dbaa55d5", .bytes = 2344500,
             .system_path = SPLIT("ImageNet_LT_test.txt")},
            {.name = "ILSVRC2012_img_train.tar", .md5 = "1d675b47d978889d74fa0da5fadfb00e"},
            {.name = "ILSVRC2012_img_val.tar", .md5 = "29b22e2961454d5413ddabcf34fc5622"},
            /* OLTR's val list: 20 per class out of the ILSVRC-2012 *train* images */
            {.name = "ImageNet_LT_val.txt", .url = CB_RAW "ImageNet_LT/ImageNet_LT_val.txt",
             .sha256 = "9af7ba688acf9532ff5845a8fb14a1e97fdc4c51ac48bc72c08ea9c3f7ff142e", .bytes = 804172,
             .system_path = SPLIT("ImageNet_LT_val.txt")},
        },
        .val_list = "ImageNet_LT_val.txt",
        .read_val = read_imagenet_lt_val,
        .fetch_note = "ImageNet images need an image-net.org account: download ILSVRC2012_img_train.tar and "
                      "ILSVRC2012_img_val.tar yourself and pass --from DIR",
    },
    {
        /* §4: OLTR lists over Places365-Standard 256-px images. */
        .name = "places_lt",
        .title = "Places-LT (OLTR lists over Places365-Standard 256 px; decoded to side x side)",
        .n_classes = 365, .c = 3, .side = {32, 64, 224},
        .n_train = 62500, .n_test = 36500, .n_max = 0,
        .default_profile = LT_PROFILE_NATURAL,
        .read = read_places_lt,
        .n_files = 5,
        .files = {
            {.name = "Places_LT_train.txt", .url = CB_RAW "Places_LT/Places_LT_train.txt",
             .sha256 = "726c4871dcbf07ce2f857703bfe32e9a83ffbf52d704239f6d95c4f4f4c247f7", .bytes = 2092674,
             .system_path = SPLIT("Places_LT_train.txt")},
            {.name = "Places_LT_test.txt", .url = CB_RAW "Places_LT/Places_LT_test.txt",
             .sha256 = "44eee8441c8098c59195465abede425721bc35525d75209f9433b161a6eb37bc", .bytes = 1705400,
             .system_path = SPLIT("Places_LT_test.txt")},
            {.name = "train_256_places365standard.tar",
             .url = "http://data.csail.mit.edu/places/places365/train_256_places365standard.tar",
             .md5 = "53ca1c756c3d1e7809517cc47c5561c5"},
            {.name = "val_256.tar", .url = "http://data.csail.mit.edu/places/places365/val_256.tar",
             .md5 = "e27b17d8d44f4af9a78502beb927f808"},
            /* OLTR's val list: 20 per class out of the Places365 *train* images */
            {.name = "Places_LT_val.txt", .url = CB_RAW "Places_LT/Places_LT_val.txt",
             .sha256 = "719e3cf3766c09134ea28f56f1036c78def511ac1ed2c2532a6beef78f2439ba", .bytes = 253480,
             .system_path = SPLIT("Places_LT_val.txt")},
        },
        .val_list = "Places_LT_val.txt",
        .read_val = read_places_lt_val,
    },
    {
        /* §6: lists regenerated from the official JSON (classifier-balancing rule). */
        .name = "inat2018",
        .title = "iNaturalist 2018 (train2018 / val2018 as test; decoded to side x side)",
        .n_classes = 8142, .c = 3, .side = {32, 64, 224},
        .n_train = 437513, .n_test = 24426, .n_max = 0,
        .default_profile = LT_PROFILE_NATURAL,
        .read = read_inat2018,
        .n_files = 3,
        .files = {
            {.name = "train2018.json.tar.gz",
             .url = "https://ml-inat-competition-datasets.s3.amazonaws.com/2018/train2018.json.tar.gz",
             .sha256 = "be550dd4e2692458e508dd03e3a8d79f087453e2ad570a438a4ff198a7abc68f",
             .md5 = "bfa29d89d629cbf04d826a720c0a68b0", .bytes = 20951917},
            {.name = "val2018.json.tar.gz",
             .url = "https://ml-inat-competition-datasets.s3.amazonaws.com/2018/val2018.json.tar.gz",
             .sha256 = "e23c47d61d3aa2a9095090dbc49de861445d9a8144884a78222873f11f7ef43e",
             .md5 = "f2ed8bfe3e9901cdefceb4e53cd3775d", .bytes = 1276686},
            {.name = "train_val2018.tar.gz",
             .url = "https://ml-inat-competition-datasets.s3.amazonaws.com/2018/train_val2018.tar.gz",
             .sha256 = "276522b02b65d98ee5168a17415b2b1ec971b035bd62959e37b80b1092130495",
             .md5 = "b1c6952ce38f31868cc50ea72d066cc3", .bytes = 127945569561LL},
        },
        .no_val = "its only labelled held-out set, val2018, is the test set here, and a validation split "
                  "would have to come out of the test set or the long-tailed training images",
    },
    {
        /* §5.5: this project's crop-classification protocol, LVIS-LT-cls v1. */
        .name = "lvis",
        .title = "LVIS v1 object crops, LVIS-LT-cls v1 (ltbench protocol; crops side x side)",
        .n_classes = 1203, .c = 3, .side = {32, 64, 112},
        .n_train = 0, .n_test = 0, .n_max = 0,
        .default_profile = LT_PROFILE_NATURAL,
        .read = read_lvis,
        .n_files = 4,
        .files = {
            {.name = "lvis_v1_train.json.zip",
             .url = "https://s3-us-west-2.amazonaws.com/dl.fbaipublicfiles.com/LVIS/lvis_v1_train.json.zip",
             .sha256 = "334a4caa374030a7817cf050364525e910f7960f9b6968cef47cffbf3893f8ba",
             .md5 = "4410d837f71203af226950447ef9d422", .bytes = 350264821},
            {.name = "lvis_v1_val.json.zip",
             .url = "https://s3-us-west-2.amazonaws.com/dl.fbaipublicfiles.com/LVIS/lvis_v1_val.json.zip",
             .sha256 = "5cae9a3c79aadb667550c2b5dcf7f4d86e059a41ec91ef690225b667e28e9ba5",
             .md5 = "87734a7f895990b9552075d7ce723e27", .bytes = 64026968},
            {.name = "train2017.zip", .url = "http://images.cocodataset.org/zips/train2017.zip",
             .sha256 = "69a8bb58ea5f8f99d24875f21416de2e9ded3178e903f1f7603e283b9e06d929",
             .md5 = "cced6f7f71b7629ddf16f17bbcfab6b2", .bytes = 19336861798LL},
            {.name = "val2017.zip", .url = "http://images.cocodataset.org/zips/val2017.zip",
             .sha256 = "4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05",
             .md5 = "442b8da7639aecaf257c1dceb8ba8c80", .bytes = 815585330},
        },
        .no_val = LVIS_NO_VAL,
    },
    {
        /* A synthetic stand-in for LVIS in the same four file formats, read by
         * the same LVIS-LT-cls v1 reader: 50 categories with LVIS r/c/f
         * frequencies, 3,313 train / 600 val objects. Written by `make
         * lvis-fixture` (tests/tools/make_lvis_fixture.c) into raw/; nothing to
         * download. The generator is deterministic (fixed seed, fixed zip
         * mtimes), so its files are pinned like real downloads: a changed
         * generator or JPEG encoder shows up as a checksum mismatch. */
        .name = "lvis_fixture",
        .title = "synthetic LVIS look-alike, 50 classes (NOT LVIS; `make lvis-fixture` writes it)",
        .n_classes = 50, .c = 3, .side = {32, 32, 64},   /* ci, short: 32 px crops */
        .n_train = 0, .n_test = 0, .n_max = 0,
        .default_profile = LT_PROFILE_NATURAL,
        .read = read_lvis,
        .n_files = 4,
        .files = {
            {.name = "lvis_v1_train.json.zip", .sha256 = "13d780f50450880be35de7e109d3eb11092c424dbbaa9e1113ef4cd9f53457f3"},
            {.name = "lvis_v1_val.json.zip", .sha256 = "900e7cbaf48a351911ee436f7ab1ec78a662589c42e3163995ce3ff77c3a6d05"},
            {.name = "train2017.zip", .sha256 = "fb63db54e91bfd3388b32ba43970a964fcf82ff1dfeffeaa58f553cc1b20b159"},
            {.name = "val2017.zip", .sha256 = "ed4b35f2a1e3c2824c9b904bdc637617784e83913cb469379db180913327da79"},
        },
        .fetch_note = "lvis_fixture is generated, not downloaded: run `make lvis-fixture` "
                      "(writes <data>/lvis_fixture/raw/)",
        .no_val = LVIS_NO_VAL,
    },
    {
        /* A synthetic stand-in for ImageNet-LT in the same five files and
         * layout (OLTR-style split lists, the nested train tar, the flat val
         * tar), read by the same reader: 1000 classes, a Zipf tail of 2,701
         * training images (320 .. 1 per class), 1,000 val and 1,000 test
         * images, 224 px JPEGs. For full-scale models' smoke runs
         * (protocol imagenet_lt_fixture): NOT ImageNet. Written by `make
         * imagenet-lt-fixture` (tests/tools/make_imagenet_lt_fixture.c) into
         * raw/; deterministic, so its files are pinned like downloads. */
        .name = "imagenet_lt_fixture",
        .title = "synthetic ImageNet-LT look-alike, 1000 classes, 224 px (NOT ImageNet; `make imagenet-lt-fixture`)",
        .n_classes = 1000, .c = 3, .side = {32, 64, 224},
        .n_train = 2701, .n_test = 1000, .n_max = 0,
        .default_profile = LT_PROFILE_NATURAL,
        .read = read_imagenet_lt,
        .n_files = 5,
        .files = {
            {.name = "ImageNet_LT_train.txt", .sha256 = "cdbed6e6c1fec209eed6eb9dd300a3815d1baed4c523fcc1efd45793285dd5c0"},
            {.name = "ImageNet_LT_test.txt", .sha256 = "21fbaaf608b613e0258e94267ce74098c4d95a40b6a43670665e7f9921abb8c2"},
            {.name = "ILSVRC2012_img_train.tar", .sha256 = "0e4c6470710b59002cb288f68e2e8366a4f4fde8be8c40ae1bfc3925469d768e"},
            {.name = "ILSVRC2012_img_val.tar", .sha256 = "c9b2466dafb45b54e33e321a39cd9066c62dfd79b74e02b6655d815012ab1b02"},
            {.name = "ImageNet_LT_val.txt", .sha256 = "17eea92cab5e908e1045c586019897b537f0090c2c0eee0951b88a883e46bb5a"},
        },
        .val_list = "ImageNet_LT_val.txt",
        .read_val = read_imagenet_lt_val,
        .fetch_note = "imagenet_lt_fixture is generated, not downloaded: run `make imagenet-lt-fixture` "
                      "(writes <data>/imagenet_lt_fixture/raw/)",
    },
};

int lt_ds_count(void)
{
    return (int)(sizeof registry / sizeof registry[0]);
}

const lt_ds_def *lt_ds_at(int i)
{
    return i >= 0 && i < lt_ds_count() ? &registry[i] : NULL;
}

const lt_ds_def *lt_ds_find(const char *name)
{
    for (int i = 0; name && i < lt_ds_count(); i++)
        if (!strcmp(registry[i].name, name)) return &registry[i];
    return NULL;
}
