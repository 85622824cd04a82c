/* nanodiff classifier: trains the small classifier (ddpm/classifier.c)
 * whose features `nanodiff score` compares, on a labelled image set, with
 * Adam on the cross entropy; saves it with what it was trained on. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_command_help help = {
    "nanodiff classifier [--data SET] [options]",
    "Trains the small image classifier whose penultimate features `nanodiff score` uses "
    "(three 3x3 convs of width w, 2w, 4w with GroupNorm and swish, the mean over positions "
    "as 4w features, one linear layer to the classes) on the training split of a labelled "
    "image set, with Adam on the cross entropy, batches drawn as `train` draws them. Then "
    "measures its accuracy on the whole test split and writes --out (safetensors: the "
    "weights, and the data set, size and accuracy as metadata), replaced whole. Default "
    "out: SET-classifier.safetensors, where `nanodiff score` looks for it."};

void cli_classifier_default_path(const char *data, char *buf, size_t size) {
    const char *base = strrchr(data, '/');
    base = base && base[1] ? base + 1 : data;
    snprintf(buf, size, "%s-classifier.safetensors", base);
}

static void classifier_free(cli_feature_net *c) {
    if (c->net) nd_module_free(nd_classifier_module(c->net));
    c->net = NULL;
}
void cli_classifier_free(cli_feature_net *c) { classifier_free(c); }

/* The metadata kept as "config": key=value lines. */
static void format_meta(const cli_feature_net *c, char *buf, size_t size) {
    const nd_classifier_config *k = nd_classifier_get_config(c->net);
    snprintf(buf, size,
             "kind=classifier\ndata=%s\nin_channels=%lld\nsize=%lld\nclasses=%lld\nwidth=%lld\n"
             "steps=%lld\ntest_accuracy=%.6f\n",
             c->data, (long long)k->in_channels, (long long)c->size, (long long)k->classes,
             (long long)k->width, (long long)c->steps, c->accuracy);
}

/* The value after "key=" on its own line of text, into buf; false if absent. */
static bool meta_value(const char *text, const char *key, char *buf, size_t size) {
    size_t n = strlen(key);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (!strncmp(line, key, n) && line[n] == '=') {
            const char *v = line + n + 1, *end = strchr(v, '\n');
            size_t len = end ? (size_t)(end - v) : strlen(v);
            if (len >= size) return false;
            memcpy(buf, v, len);
            buf[len] = 0;
            return true;
        }
    }
    return false;
}

static bool meta_int(const char *text, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    char v[64], *end;
    if (!meta_value(text, key, v, sizeof v) || !cli_plain_integer(v)) return false;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (*end || errno || x < lo || x > hi) return false;
    *out = x;
    return true;
}

int cli_classifier_load(const char *path, cli_feature_net *c, nd_error *err) {
    memset(c, 0, sizeof *c);
    nd_safetensors st;
    if (nd_safetensors_load(path, &st, err) != ND_OK) return ND_ERR;
    const char *text = nd_safetensors_meta(&st, "config");
    char kind[32], acc[64];
    nd_classifier_config k = {0};
    int64_t steps = 0;
    int rc = ND_OK;
    if (!text || !meta_value(text, "kind", kind, sizeof kind) || strcmp(kind, "classifier"))
        rc = nd_error_set(err, "%s is not a nanodiff classifier (made by nanodiff classifier)",
                          path);
    else if (!meta_value(text, "data", c->data, sizeof c->data) ||
             !meta_int(text, "in_channels", 1, 64, &k.in_channels) ||
             !meta_int(text, "size", 4, 4096, &c->size) ||
             !meta_int(text, "classes", 2, 100000, &k.classes) ||
             !meta_int(text, "width", 8, 4096, &k.width) || k.width % 8 ||
             !meta_int(text, "steps", 0, INT64_MAX, &steps) ||
             !meta_value(text, "test_accuracy", acc, sizeof acc))
        rc = nd_error_set(err, "%s: the classifier's settings are missing or out of range", path);
    nd_safetensors_free(&st);
    if (rc != ND_OK) return rc;
    c->steps = steps;
    c->accuracy = strtod(acc, NULL);
    nd_rng g = nd_rng_init(0, 0);
    c->net = nd_classifier_new(&k, &g);
    nd_checkpoint ck = {.model = nd_classifier_module(c->net)};
    if (nd_checkpoint_load(path, &ck, err) != ND_OK) {
        classifier_free(c);
        return ND_ERR;
    }
    nd_module_train(nd_classifier_module(c->net), false);
    return ND_OK;
}

nd_tensor *cli_classifier_features(cli_feature_net *c, const nd_tensor *images) {
    int64_t n = images->shape[0], F = nd_classifier_features_dim(c->net);
    nd_tensor *out = nd_empty(ND_SHAPE(n, F));
    nd_no_grad_begin();
    for (int64_t i = 0; i < n; i += 250) {
        nd_scope *s = nd_scope_begin();
        int64_t j = i + 250 < n ? i + 250 : n;
        nd_tensor *f = nd_contiguous(nd_classifier_features(c->net, nd_slice(images, 0, i, j, 1)));
        memcpy(nd_data(out) + i * F, nd_data(f), sizeof(float) * (size_t)((j - i) * F));
        nd_scope_end(s);
    }
    nd_no_grad_end();
    return out;
}

/* The share of images the classifier puts in each class (counts[classes]);
 * with labels, also how many it gets right. */
int64_t cli_classifier_predict(cli_feature_net *c, const nd_tensor *features,
                               const nd_tensor *labels, int64_t *counts) {
    int64_t K = nd_classifier_get_config(c->net)->classes, right = 0;
    memset(counts, 0, sizeof *counts * (size_t)K);
    nd_no_grad_begin();
    nd_scope *s = nd_scope_begin();
    nd_tensor *pred = nd_contiguous(nd_argmax(nd_classifier_logits(c->net, features), 1, false));
    for (int64_t i = 0; i < features->shape[0]; i++) {
        int64_t k = (int64_t)nd_data(pred)[i];
        counts[k]++;
        if (labels && nd_data(labels)[i] == (float)k) right++;
    }
    nd_scope_end(s);
    nd_no_grad_end();
    return right;
}

int cli_classifier(int argc, char **argv) {
    int64_t width = 32, steps = 3000, batch = 64, seed = 0, threads = nd_get_num_threads();
    double lr = 1e-3;
    const char *data = "fashion-mnist", *data_dir = "", *out = "";
    cli_option o[] = {
        CLI_OPT_TEXT("--data", &data, NULL, "SET",
                     "a labelled image set: fashion-mnist, mnist, cifar10, shapes, a folder"),
        CLI_OPT_TEXT("--data-dir", &data_dir, NULL, "DIR", "its folder, where needed"),
        CLI_OPT_INT("--width", &width, 8, 1024, "W",
                    "channels of the first conv (a multiple of 8)"),
        CLI_OPT_INT("--steps", &steps, 1, 1e9, "N", "training steps"),
        CLI_OPT_INT("--batch", &batch, 1, 1e6, "N", "images per step"),
        CLI_OPT_REAL("--lr", &lr, 0, 1, "LR", "Adam's learning rate"),
        CLI_OPT_INT("--seed", &seed, 0, (double)INT64_MAX, "N", "weights and batches"),
        CLI_OPT_TEXT("--out", &out, NULL, "FILE",
                     "where to write (default SET-classifier.safetensors)"),
        CLI_OPT_INT("--threads", &threads, 1, 1024, "N", "threads"),
    };
    const int no = (int)(sizeof o / sizeof o[0]);
    nd_error err;
    int npos;
    int pr = cli_parse(argc, argv, o, no, &help, NULL, 0, &npos, &err);
    if (pr == 1) return 0;
    if (pr == ND_OK && width % 8)
        pr = nd_error_set(&err, "--width %lld: a multiple of 8 (GroupNorm's 8 groups)",
                          (long long)width);
    if (pr != ND_OK) {
        fprintf(stderr, "nanodiff classifier: %s\n(see nanodiff classifier --help)\n", err.message);
        return CLI_EXIT_USAGE;
    }
    nd_set_num_threads((int)threads);
    char path[1100];
    if (out[0])
        snprintf(path, sizeof path, "%s", out);
    else
        cli_classifier_default_path(data, path, sizeof path);
    cli_data train, test;
    if (cli_data_open(data, data_dir, false, &train, &err) != ND_OK)
        return cli_fail("classifier", &err);
    if (cli_data_open(data, data_dir, true, &test, &err) != ND_OK) {
        cli_data_close(&train);
        return cli_fail("classifier", &err);
    }
    int rc = ND_OK;
    int64_t K = cli_data_classes(&train);
    if (train.points || K < 2)
        rc = nd_error_set(&err, "%s: a classifier needs labelled images (%s)", train.name,
                          train.points ? "these are points" : "these have no labels");
    if (rc != ND_OK) {
        cli_data_close(&train);
        cli_data_close(&test);
        return cli_fail("classifier", &err);
    }

    cli_feature_net c = {.size = train.size, .steps = steps};
    snprintf(c.data, sizeof c.data, "%s", data);
    nd_classifier_config k = nd_classifier_defaults(train.dim, K);
    k.width = width;
    nd_rng g = nd_rng_init((uint64_t)seed, 11);
    c.net = nd_classifier_new(&k, &g);
    nd_module *net = nd_classifier_module(c.net);
    nd_optim_config oc = nd_optim_defaults(ND_ADAM);
    oc.lr = lr;
    nd_optimizer *opt = nd_optimizer_new(net, oc);
    char about[200];
    cli_data_describe(&train, about, sizeof about);
    printf("training a classifier of %lld parameters (width %lld, %lld features) on %s: %s\n",
           (long long)nd_num_parameters(net), (long long)width, (long long)4 * width, train.name,
           about);
    fflush(stdout);
    cli_progress p;
    cli_progress_begin(&p, stderr, 0, steps);
    for (int64_t step = 0; step < steps; step++) {
        nd_scope *s = nd_scope_begin();
        nd_tensor *labels = NULL;
        nd_tensor *x = cli_data_batch(&train, (uint64_t)seed, step, batch, &labels);
        nd_tensor *loss =
            nd_cross_entropy(nd_classifier_logits(c.net, nd_classifier_features(c.net, x)), labels);
        nd_optimizer_zero_grad(opt);
        nd_backward_free_graph(loss);
        nd_optimizer_step(opt);
        double l = nd_item(loss);
        nd_scope_end(s);
        cli_progress_step(&p, step + 1, l);
    }
    cli_progress_end(&p);
    nd_optimizer_free(opt);

    nd_module_train(net, false);
    nd_scope *s = nd_scope_begin();
    int64_t *counts = nd_alloc(sizeof *counts * (size_t)K);
    nd_tensor *test_labels;
    nd_tensor *test_images = cli_data_images(&test, CLI_FRESH_IMAGES, (uint64_t)seed, &test_labels);
    int64_t ntest = test_images->shape[0];
    nd_tensor *f = cli_classifier_features(&c, test_images);
    int64_t right = cli_classifier_predict(&c, f, test_labels, counts);
    nd_dealloc(counts, sizeof *counts * (size_t)K);
    c.accuracy = (double)right / (double)ntest;
    nd_scope_end(s);
    char meta[2048];
    format_meta(&c, meta, sizeof meta);
    nd_checkpoint ck = {.model = net, .step = steps, .config = meta};
    rc = nd_checkpoint_save(path, &ck, &err);
    if (rc == ND_OK)
        printf("test accuracy %.2f%% on %lld test images; wrote %s\n", 100 * c.accuracy,
               (long long)ntest, path);
    classifier_free(&c);
    cli_data_close(&train);
    cli_data_close(&test);
    return rc == ND_OK ? 0 : cli_fail("classifier", &err);
}
