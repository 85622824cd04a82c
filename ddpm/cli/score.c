/* nanodiff score: how close samples are to the data, with nothing
 * downloaded. Images: the Frechet distance between the features a
 * classifier trained by nanodiff sees in the samples and in the test split
 * (FID's formula on our own features). Points: the energy distance to a
 * fresh draw of the data, and k-NN precision and recall. */
#include <math.h>
#include <string.h>

#include "cli.h"

static const cli_command_help help = {
    "nanodiff score SAMPLES... [options]\n       nanodiff score --floor --data SET [options]",
    "Scores samples against the data. SAMPLES is a .npy file (what `nanodiff sample` writes: "
    "N x C x H x W in [-1, 1], or N x D points) or a training folder (its samples.npy, and "
    "its data set); several make one set. Images: the Frechet distance, |mu_a - mu_b|^2 + tr(S_a + "
    "S_b - "
    "2 (S_a^1/2 S_b S_a^1/2)^1/2), between Gaussians fitted to the features (the "
    "penultimate layer) of a classifier made by `nanodiff classifier` for the samples and "
    "for the test split; and the share of samples it puts in each class. 0 means the "
    "features' means and covariances agree; the figure grows as they part, and with fewer "
    "samples even for perfect ones: compare at the same N, against --floor, which scores N "
    "images of the training split in place of samples, the best a model can do at that N. "
    "Points: the energy distance (2 E|X - Y| - E|X - X'| - E|Y - Y'|) to as many fresh "
    "points of the data, and k-NN precision (samples on the data) and recall (data "
    "covered), k = 5."};

/* The data set's name from a training folder's settings, and its samples. */
static int open_samples(const char *arg, const char *prefix, char *data, size_t dsize,
                        char *data_dir, size_t ddsize, nd_tensor **x, nd_tensor **labels,
                        nd_error *err) {
    size_t n = strlen(arg);
    char path[1100];
    if (n > 4 && !strcmp(arg + n - 4, ".npy")) {
        if (!data[0])
            return nd_error_set(err, "%s: say which data set the samples are of with --data", arg);
        if (n >= sizeof path) return nd_error_set(err, "%.60s...: the path is too long", arg);
        memcpy(path, arg, n + 1);
    } else {
        char ckpt[1100], dir[1100], name[300];
        cli_spec s;
        if (cli_checkpoint_path(arg, ckpt, sizeof ckpt, err) != ND_OK ||
            cli_checkpoint_spec(ckpt, &s, err) != ND_OK)
            return ND_ERR;
        cli_default_dir(ckpt, "", dir, sizeof dir);
        snprintf(name, sizeof name, "%s.npy", prefix);
        if (cli_path(path, sizeof path, dir, name, err) != ND_OK) return ND_ERR;
        if (!data[0]) snprintf(data, dsize, "%s", s.data);
        if (!data_dir[0]) snprintf(data_dir, ddsize, "%s", s.data_dir);
    }
    if (nd_npy_load(path, x, err) != ND_OK) return ND_ERR;
    /* the classes the samples were drawn for: PREFIX-labels.npy beside them */
    size_t len = strlen(path);
    char lpath[1200];
    snprintf(lpath, sizeof lpath, "%.*s-labels.npy", (int)(len - 4), path);
    if (!cli_exists(lpath)) return ND_OK;
    if (nd_npy_load(lpath, labels, err) != ND_OK) {
        nd_free(*x);
        *x = NULL;
        return ND_ERR;
    }
    if ((*labels)->ndim != 1 || (*labels)->shape[0] != (*x)->shape[0]) {
        nd_free(*x), nd_free(*labels);
        *x = *labels = NULL;
        return nd_error_set(err, "%s does not hold one label per sample of %s", lpath, path);
    }
    return ND_OK;
}

/* Several sample files make one set (samples drawn in parts, with other
 * seeds); their labels count if every file has them. */
#define MAX_FILES 16
static int read_samples(const char **args, int nargs, const char *prefix, char *data, size_t dsize,
                        char *data_dir, size_t ddsize, nd_tensor **x, nd_tensor **labels,
                        nd_error *err) {
    nd_tensor *xs[MAX_FILES] = {0}, *ls[MAX_FILES] = {0};
    int rc = ND_OK, nlabels = 0;
    for (int i = 0; i < nargs && rc == ND_OK; i++) {
        rc = open_samples(args[i], prefix, data, dsize, data_dir, ddsize, &xs[i], &ls[i], err);
        if (rc == ND_OK && i > 0 &&
            (xs[i]->ndim != xs[0]->ndim || memcmp(xs[i]->shape + 1, xs[0]->shape + 1,
                                                  sizeof(int64_t) * (size_t)(xs[0]->ndim - 1))))
            rc = nd_error_set(err, "%s: its samples are not of the first file's shape", args[i]);
        nlabels += ls[i] != NULL;
    }
    if (rc == ND_OK) {
        nd_scope *s = nd_scope_begin();
        *x = nd_persist(nd_concat((const nd_tensor *const *)xs, nargs, 0));
        *labels =
            nlabels == nargs ? nd_persist(nd_concat((const nd_tensor *const *)ls, nargs, 0)) : NULL;
        nd_scope_end(s);
    }
    for (int i = 0; i < nargs; i++) nd_free(xs[i]), nd_free(ls[i]);
    return rc;
}

/* The first n samples (and labels) only. */
static void first_samples(nd_tensor **x, nd_tensor **labels, int64_t n) {
    nd_scope *s = nd_scope_begin();
    nd_tensor *nx = nd_persist(nd_contiguous(nd_slice(*x, 0, 0, n, 1)));
    nd_tensor *nl = *labels ? nd_persist(nd_contiguous(nd_slice(*labels, 0, 0, n, 1))) : NULL;
    nd_scope_end(s);
    nd_free(*x), nd_free(*labels);
    *x = nx, *labels = nl;
}

static int score_points(const nd_tensor *x, const cli_data *d, uint64_t seed, int64_t k,
                        nd_error *err) {
    int64_t n = x->shape[0];
    nd_tensor *real = d->generated ? cli_data_batch(d, ~seed, 0, n, NULL) : d->table;
    double pr, rc;
    if (nd_knn_precision_recall(real, x, (int)k, &pr, &rc, err) != ND_OK) return ND_ERR;
    printf("energy distance %.6f  precision %.4f  recall %.4f  (%lld samples against %lld %s "
           "points of %s, k = %lld)\n",
           nd_energy_distance(x, real), pr, rc, (long long)n, (long long)real->shape[0],
           d->generated ? "fresh" : "data", d->name, (long long)k);
    return ND_OK;
}

static int score_images(const nd_tensor *x, const nd_tensor *labels, const cli_data *test,
                        int64_t nref, const char *cpath, const char *what, uint64_t seed,
                        nd_error *err) {
    cli_feature_net c;
    if (cli_classifier_load(cpath, &c, err) != ND_OK) return ND_ERR;
    int rc = ND_OK;
    int64_t C = test->dim, S = test->size;
    if (strcmp(c.data, test->name) || c.size != S ||
        nd_classifier_get_config(c.net)->in_channels != C)
        rc = nd_error_set(err, "%s was trained on %s (%lldx%lld images), not on %s", cpath, c.data,
                          (long long)c.size, (long long)c.size, test->name);
    else if (x->shape[1] != C || x->shape[2] != S || x->shape[3] != S)
        rc = nd_error_set(err, "the samples are %lldx%lldx%lld images, %s's are %lldx%lldx%lld",
                          (long long)x->shape[1], (long long)x->shape[2], (long long)x->shape[3],
                          test->name, (long long)C, (long long)S, (long long)S);
    if (rc != ND_OK) {
        cli_classifier_free(&c);
        return rc;
    }
    nd_scope *s = nd_scope_begin();
    nd_tensor *ref = cli_data_images(test, nref ? nref : CLI_FRESH_IMAGES, seed, NULL);
    if (nref && nref < ref->shape[0]) ref = nd_slice(ref, 0, 0, nref, 1);
    nd_tensor *fx = cli_classifier_features(&c, x), *fr = cli_classifier_features(&c, ref);
    double d2;
    rc = nd_frechet_distance(fx, fr, &d2, err);
    if (rc == ND_OK) {
        printf("frechet distance %.4f between the %lld features of %lld %s and of %lld test "
               "images of %s (classifier %s: %.2f%% test accuracy)\n",
               d2, (long long)fx->shape[1], (long long)x->shape[0], what, (long long)ref->shape[0],
               test->name, cpath, 100 * c.accuracy);
        int64_t K = nd_classifier_get_config(c.net)->classes, counts[256];
        if (K <= 256) {
            int64_t right = cli_classifier_predict(&c, fx, labels, counts);
            printf("classes the classifier sees in them:");
            for (int64_t k = 0; k < K; k++)
                printf(" %lld: %.1f%%", (long long)k,
                       100.0 * (double)counts[k] / (double)x->shape[0]);
            printf("\n");
            if (labels)
                printf("the class each was drawn for: %.2f%% of them (the classifier gets %.2f%% "
                       "of test images right)\n",
                       100.0 * (double)right / (double)x->shape[0], 100 * c.accuracy);
        }
    }
    nd_scope_end(s);
    cli_classifier_free(&c);
    return rc;
}

int cli_score(int argc, char **argv) {
    int64_t n = 0, ref = 0, k = 5, seed = 0, threads = nd_get_num_threads();
    bool floor_ = false;
    const char *data = "", *data_dir = "", *classifier = "", *prefix = "samples";
    cli_option o[] = {
        CLI_OPT_TEXT("--data", &data, NULL, "SET", "the data (default: the run's data set)"),
        CLI_OPT_TEXT("--data-dir", &data_dir, NULL, "DIR", "its folder, where needed"),
        CLI_OPT_TEXT("--classifier", &classifier, NULL, "FILE",
                     "images: the feature network (default: SET-classifier.safetensors)"),
        CLI_OPT_TEXT("--prefix", &prefix, NULL, "NAME",
                     "with a training folder: score NAME.npy in it"),
        CLI_OPT_FLAG("--floor", &floor_, "score --n images of the training split instead"),
        CLI_OPT_INT("--n", &n, 0, 1e8, "N",
                    "score the first N samples (0: all), or with --floor N images (0: 1000)"),
        CLI_OPT_INT("--ref", &ref, 0, 1e8, "N",
                    "images: compare with the first N test images (0: all of them)"),
        CLI_OPT_INT("--k", &k, 1, 1000, "K", "points: neighbours for precision and recall"),
        CLI_OPT_INT("--seed", &seed, 0, (double)INT64_MAX, "N",
                    "fresh data, and the images --floor picks"),
        CLI_OPT_INT("--threads", &threads, 1, 1024, "N", "threads"),
    };
    const int no = (int)(sizeof o / sizeof o[0]);
    nd_error err;
    const char *pos[MAX_FILES];
    int npos;
    int pr = cli_parse(argc, argv, o, no, &help, pos, MAX_FILES, &npos, &err);
    if (pr == 1) return 0;
    if (pr == ND_OK && floor_ == (npos > 0))
        pr = nd_error_set(&err, floor_ ? "--floor scores training images: give no SAMPLES"
                                       : "give SAMPLES (a .npy file or a training folder)");
    if (pr == ND_OK && floor_ && !data[0]) pr = nd_error_set(&err, "--floor needs --data SET");
    if (pr != ND_OK) {
        fprintf(stderr, "nanodiff score: %s\n(see nanodiff score --help)\n", err.message);
        return CLI_EXIT_USAGE;
    }
    nd_set_num_threads((int)threads);
    char set[512], dir[512];
    snprintf(set, sizeof set, "%s", data);
    snprintf(dir, sizeof dir, "%s", data_dir);
    nd_tensor *x = NULL, *labels = NULL;
    if (!floor_ && read_samples(pos, npos, prefix, set, sizeof set, dir, sizeof dir, &x, &labels,
                                &err) != ND_OK)
        return cli_fail("score", &err);
    cli_data test, train = {0};
    if (cli_data_open(set, dir, true, &test, &err) != ND_OK) {
        nd_free(x);
        nd_free(labels);
        return cli_fail("score", &err);
    }
    int rc = ND_OK;
    if (floor_ && n == 0) n = 1000;
    if (!floor_ && n > 0) {
        if (n > x->shape[0])
            rc = nd_error_set(&err, "--n %lld: there are %lld samples", (long long)n,
                              (long long)x->shape[0]);
        else
            first_samples(&x, &labels, n);
    }
    if (floor_ && (rc = cli_data_open(set, dir, false, &train, &err)) == ND_OK) {
        if (test.points)
            rc = nd_error_set(&err, "--floor is for images: for points, score a fresh draw "
                                    "against another with --seed");
        else if (!train.generated && n > train.table->shape[0])
            rc = nd_error_set(&err, "--n %lld: the training split of %s has %lld images",
                              (long long)n, train.name, (long long)train.table->shape[0]);
        else
            x = nd_persist(cli_data_batch(&train, (uint64_t)seed, 0, n, NULL));
    }
    char cpath[1100];
    if (classifier[0])
        snprintf(cpath, sizeof cpath, "%s", classifier);
    else
        cli_classifier_default_path(set, cpath, sizeof cpath);
    if (rc == ND_OK) {
        bool points_in = x->ndim == 2, images_in = x->ndim == 4;
        if (test.points && (!points_in || x->shape[1] != test.dim))
            rc = nd_error_set(&err,
                              "%s holds points in %lld dimensions; the samples are not N x %lld",
                              test.name, (long long)test.dim, (long long)test.dim);
        else if (!test.points && !images_in)
            rc =
                nd_error_set(&err, "%s holds images; the samples are not N x C x H x W", test.name);
        else if (x->shape[0] < 2)
            rc = nd_error_set(&err, "%lld samples: scoring needs at least 2",
                              (long long)x->shape[0]);
        else if (!test.points && !classifier[0] && !cli_exists(cpath))
            rc = nd_error_set(&err,
                              "no classifier at %s: make one with `nanodiff classifier "
                              "--data %s` (a few minutes) or give --classifier FILE",
                              cpath, set);
    }
    if (rc == ND_OK) {
        nd_scope *s = nd_scope_begin();
        rc = test.points ? score_points(x, &test, (uint64_t)seed, k, &err)
                         : score_images(x, labels, &test, ref, cpath,
                                        floor_ ? "training images (the floor)" : "samples",
                                        (uint64_t)seed, &err);
        nd_scope_end(s);
    }
    nd_free(x);
    nd_free(labels);
    cli_data_close(&test);
    if (floor_) cli_data_close(&train);
    return rc == ND_OK ? 0 : cli_fail("score", &err);
}
