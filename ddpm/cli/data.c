/* What `--data` names, opened, and batches drawn from it by step number:
 * a resumed run draws exactly the batches an uninterrupted one would. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
/* The data's key: far from the seeds the model and trainer use. */
#define DATA_KEY(seed) ((seed) ^ UINT64_C(0x9E3779B97F4A7C15))

static bool is_toy(const char *name) {
    for (int i = 0; nd_toy_name(i); i++)
        if (!strcmp(nd_toy_name(i), name)) return true;
    return false;
}

static bool ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* dir/base or dir/base.gz, whichever exists, into buf. */
static bool find_idx(const char *dir, const char *base, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", dir, base);
    if (cli_exists(buf)) return true;
    snprintf(buf, size, "%s/%s.gz", dir, base);
    return cli_exists(buf);
}

/* MNIST-style IDX files in dir, padded from 28 to 32 pixels. */
static int open_idx(const char *dir, bool test, cli_data *d, nd_error *err) {
    char images[1100], labels[1100];
    const char *split = test ? "t10k" : "train";
    char base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    if (!find_idx(dir, base, images, sizeof images))
        return nd_error_set(err, "no %s or %s.gz in %s", base, base, dir);
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    bool has_labels = find_idx(dir, base, labels, sizeof labels);
    nd_dataset ds;
    if (nd_idx_load(images, has_labels ? labels : NULL, 2, &ds, err) != ND_OK) return ND_ERR;
    d->table = ds.images;
    d->labels = ds.labels;
    return ND_OK;
}

static int open_cifar(const char *dir, bool test, cli_data *d, nd_error *err) {
    char names[5][1100];
    const char *paths[5];
    int n = 0;
    if (test) {
        snprintf(names[0], sizeof names[0], "%s/test_batch.bin", dir);
        paths[n++] = names[0];
    } else {
        for (int k = 0; k < 5; k++) {
            snprintf(names[k], sizeof names[k], "%s/data_batch_%d.bin", dir, k + 1);
            paths[n++] = names[k];
        }
    }
    for (int k = 0; k < n; k++)
        if (!cli_exists(paths[k])) return nd_error_set(err, "%s: no such file", paths[k]);
    nd_dataset ds;
    if (nd_cifar10_load(paths, n, &ds, err) != ND_OK) return ND_ERR;
    d->table = ds.images;
    d->labels = ds.labels;
    return ND_OK;
}

int cli_data_open(const char *name, const char *dir, bool test, cli_data *d, nd_error *err) {
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    if (is_toy(name)) {
        d->points = d->generated = true;
        d->dim = 2;
        return ND_OK;
    }
    if (!strcmp(name, "shapes")) {
        d->generated = true;
        d->dim = 1;
        d->size = 32;
        return ND_OK;
    }
    int rc;
    if (!strcmp(name, "fashion-mnist") || !strcmp(name, "mnist")) {
        if (!dir || !*dir) {
            if (!strcmp(name, "mnist"))
                return nd_error_set(err, "--data mnist needs --data-dir, the folder of its "
                                         "IDX files (train-images-idx3-ubyte[.gz], ...)");
            dir = FASHION_DIR;
            if (!is_dir(dir))
                return nd_error_set(err,
                                    "%s is missing: install Debian's dataset-fashion-mnist "
                                    "package, or give --data-dir",
                                    dir);
        }
        rc = open_idx(dir, test, d, err);
    } else if (!strcmp(name, "cifar10")) {
        if (!dir || !*dir)
            return nd_error_set(err, "--data cifar10 needs --data-dir, the folder of "
                                     "data_batch_1.bin ... test_batch.bin");
        rc = open_cifar(dir, test, d, err);
    } else if (ends_with(name, ".csv")) {
        d->points = true;
        rc = nd_csv_load(name, &d->table, err);
    } else if (is_dir(name)) {
        char probe[1100];
        snprintf(probe, sizeof probe, "%s/data_batch_1.bin", name);
        rc = cli_exists(probe) ? open_cifar(name, test, d, err) : open_idx(name, test, d, err);
    } else if (cli_exists(name)) {
        nd_dataset ds;
        rc = nd_idx_load(name, NULL, 2, &ds, err);
        d->table = ds.images;
    } else {
        char names[256] = "";
        for (int i = 0; nd_toy_name(i); i++) {
            strcat(names, nd_toy_name(i));
            strcat(names, ", ");
        }
        return nd_error_set(err,
                            "--data %s: not a data set (%sshapes, fashion-mnist, mnist, "
                            "cifar10) nor a file or folder",
                            name, names);
    }
    if (rc != ND_OK) {
        cli_data_close(d);
        return ND_ERR;
    }
    if (d->table->shape[0] < 1) {
        nd_error_set(err, "%s holds no examples", name);
        cli_data_close(d);
        return ND_ERR;
    }
    if (!d->points) {
        d->dim = d->table->shape[1];
        d->size = d->table->shape[2];
        if (d->table->shape[3] != d->size) {
            nd_error_set(err, "%s: images of %lldx%lld are not square", name,
                         (long long)d->table->shape[2], (long long)d->table->shape[3]);
            cli_data_close(d);
            return ND_ERR;
        }
    } else {
        d->dim = d->table->shape[1];
    }
    return ND_OK;
}

void cli_data_close(cli_data *d) {
    nd_free(d->table);
    nd_free(d->labels);
    memset(d, 0, sizeof *d);
}

nd_tensor *cli_data_batch(const cli_data *d, uint64_t seed, int64_t step, int64_t n,
                          nd_tensor **labels) {
    if (labels) *labels = NULL;
    nd_rng g = nd_rng_init(DATA_KEY(seed), (uint32_t)step);
    g.offset = (uint64_t)(step >> 32) << 40; /* past 2^32 steps, further along the stream */
    if (d->generated) {
        if (!d->points) return nd_toy_shapes(n, d->size, &g, labels);
        nd_tensor *x;
        if (nd_toy_points(d->name, n, &g, &x, NULL) != ND_OK)
            nd_fatal("cli_data_batch", "unknown toy set %s", d->name);
        return x;
    }
    const nd_tensor *t = d->table;
    int64_t N = t->shape[0], row = nd_numel(t) / N;
    int64_t shape[ND_MAX_DIMS];
    memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    shape[0] = n;
    nd_tensor *out = nd_empty(shape, t->ndim);
    nd_tensor *u = nd_rand(&g, ND_SHAPE(n));
    if (labels && d->labels) *labels = nd_empty(ND_SHAPE(n));
    const float *src = nd_data(t), *pu = nd_data(u);
    float *dst = nd_data(out);
    for (int64_t k = 0; k < n; k++) {
        float at = pu[k] * (float)N; /* rounded to float, as on every target */
        int64_t i = (int64_t)at;
        if (i >= N) i = N - 1; /* u < 1, but u N may round up to N */
        memcpy(dst + k * row, src + i * row, sizeof(float) * (size_t)row);
        if (labels && d->labels) nd_data(*labels)[k] = nd_data(d->labels)[i];
    }
    return out;
}

nd_tensor *cli_data_images(const cli_data *d, int64_t n, uint64_t seed, nd_tensor **labels) {
    if (d->generated) return cli_data_batch(d, ~seed, 0, n, labels);
    if (labels) *labels = d->labels;
    return d->table;
}

int64_t cli_data_classes(const cli_data *d) {
    if (d->generated) return d->points ? 0 : 3; /* shapes: disc, square, bar */
    if (!d->labels) return 0;
    float most = -1;
    for (int64_t i = 0; i < nd_numel(d->labels); i++) most = fmaxf(most, nd_data(d->labels)[i]);
    return (int64_t)most + 1;
}

void cli_data_describe(const cli_data *d, char *buf, size_t size) {
    if (d->generated && d->points)
        snprintf(buf, size, "%s (2-D points, drawn fresh for every batch)", d->name);
    else if (d->generated)
        snprintf(buf, size,
                 "shapes (1x%lldx%lld images of discs, squares and bars, drawn fresh "
                 "for every batch)",
                 (long long)d->size, (long long)d->size);
    else if (d->points)
        snprintf(buf, size, "%s (%lld points of %lld dimensions)", d->name,
                 (long long)d->table->shape[0], (long long)d->dim);
    else
        snprintf(buf, size, "%s (%lld images %lldx%lldx%lld%s)", d->name,
                 (long long)d->table->shape[0], (long long)d->dim, (long long)d->size,
                 (long long)d->size, d->labels ? ", labelled" : "");
}

int cli_data_check_kind(const cli_data *d, const char *model, nd_error *err) {
    if (d->points != !strcmp(model, "mlp"))
        return nd_error_set(err, "the %s model does not fit %s: use --model %s for %s", model,
                            d->name, d->points ? "mlp" : "unet", d->points ? "points" : "images");
    return ND_OK;
}

int cli_data_check_model(const cli_data *d, const cli_spec *s, nd_error *err) {
    bool mlp = !strcmp(s->model, "mlp");
    if (cli_data_check_kind(d, s->model, err) != ND_OK) return ND_ERR;
    if (mlp && s->mlp.dim != d->dim)
        return nd_error_set(err, "the MLP takes points of %lld dimensions, %s has %lld",
                            (long long)s->mlp.dim, d->name, (long long)d->dim);
    if (!mlp && (s->unet.in_channels != d->dim || s->unet.resolution != d->size))
        return nd_error_set(err, "the UNet takes %lldx%lldx%lld images, %s has %lldx%lldx%lld",
                            (long long)s->unet.in_channels, (long long)s->unet.resolution,
                            (long long)s->unet.resolution, d->name, (long long)d->dim,
                            (long long)d->size, (long long)d->size);
    return ND_OK;
}
