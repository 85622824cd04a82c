/* The nanodiff command's parts: options, the run's settings, data, the
 * progress line, and one file per command. Not a library API. */
#ifndef NANODIFF_CLI_H
#define NANODIFF_CLI_H

#include <stdio.h>

#include "data/data.h"
#include "ddpm/ddpm.h"

/* ---- options ------------------------------------------------------------ */

/* One --option of a command. value points at the variable that holds the
 * default and receives what is given: bool (FLAG), int64_t (INT, within
 * [lo, hi]), double (REAL, finite, within [lo, hi]) or const char * (TEXT,
 * one of `choices` when that is set: "a|b|c"). --help prints the table
 * with the defaults taken from the variables, so help never drifts from
 * the code. */
typedef enum { CLI_FLAG, CLI_INT, CLI_REAL, CLI_TEXT } cli_kind;
typedef struct cli_option {
    const char *name; /* "--steps" */
    cli_kind kind;
    void *value;
    double lo, hi;
    const char *choices;
    const char *arg; /* what the value is called in help: "N", "DIR" */
    const char *help;
    bool given; /* set by cli_parse */
} cli_option;

#define CLI_OPT_INT(nm, var, l, h, a, text)                                                        \
    { .name = nm, .kind = CLI_INT, .value = var, .lo = l, .hi = h, .arg = a, .help = text }
#define CLI_OPT_REAL(nm, var, l, h, a, text)                                                       \
    { .name = nm, .kind = CLI_REAL, .value = var, .lo = l, .hi = h, .arg = a, .help = text }
#define CLI_OPT_TEXT(nm, var, ch, a, text)                                                         \
    { .name = nm, .kind = CLI_TEXT, .value = var, .choices = ch, .arg = a, .help = text }
#define CLI_OPT_FLAG(nm, var, text)                                                                \
    { .name = nm, .kind = CLI_FLAG, .value = var, .help = text }

/* The options of every command that reads a RUN and writes files. */
#define CLI_OPTS_RUN_OUTPUT(weights, out, prefix)                                                  \
    CLI_OPT_TEXT("--weights", weights, "ema|raw", "ema|raw",                                       \
                 "the moving average of the weights, or the last ones"),                           \
        CLI_OPT_TEXT("--out", out, NULL, "DIR", "where to write (default: RUN's folder)"),         \
        CLI_OPT_TEXT("--prefix", prefix, NULL, "NAME", "file names start with this")

/* The command's usage line and a paragraph about it, then the options. */
typedef struct cli_command_help {
    const char *usage, *about;
} cli_command_help;

/* Parses argv[0..argc) (the words after the command). Words not starting
 * with "--" are positional: up to max_pos of them go to pos[]. Returns 0,
 * 1 when --help was given (the help is printed), or ND_ERR. */
int cli_parse(int argc, char **argv, cli_option *opts, int nopts, const cli_command_help *h,
              const char **pos, int max_pos, int *npos, nd_error *err);
/* cli_parse for a command that reads one RUN and writes files named
 * PREFIX...: exactly one RUN (into *run) and a prefix that is a name, not
 * a path. Returns as cli_parse does. */
int cli_parse_run(int argc, char **argv, cli_option *opts, int nopts, const cli_command_help *h,
                  const char **run, const char *prefix, nd_error *err);
/* Prints "nanodiff <cmd>: message" and where to read the usage; returns
 * the exit status for usage errors. */
int cli_usage_error(const char *cmd, const nd_error *err);
void cli_print_help(FILE *f, const cli_option *opts, int nopts, const cli_command_help *h);
/* The option of that name (misuse if there is none). */
cli_option *cli_find(cli_option *opts, int nopts, const char *name);
/* Whether s is a whole number as the program writes one: an optional
 * '-', then "0" or digits without a leading zero, nothing around them
 * (no space, '+' or other white space). Every integer read from the
 * command line, a config or a file's metadata passes this first. */
bool cli_plain_integer(const char *s);
/* "1,2,2" into at most max whole numbers in [lo, hi]. */
int cli_int_list(const char *name, const char *text, int64_t lo, int64_t hi, int64_t *out, int max,
                 int *n, nd_error *err);

/* ---- the run: what is trained, on what, how ----------------------------- */

/* Everything needed to rebuild a model and go on training it, kept in the
 * checkpoint's "config" as key=value lines. */
typedef struct cli_spec {
    char data[512];     /* a toy set, "shapes", "fashion-mnist", "mnist", "cifar10", a path */
    char data_dir[512]; /* where mnist / fashion-mnist / cifar10 files are */
    char model[8];      /* "mlp" or "unet" */
    nd_mlp_config mlp;
    char unet_name[16]; /* the named config the UNet started from */
    nd_unet_config unet;
    char schedule[8]; /* "linear" or "cosine" */
    int64_t T;
    double beta_start, beta_end;
    char predicts[8];  /* "eps", "x0" or "mean" */
    char loss[8];      /* "mse" or "vlb" */
    double label_drop; /* class-conditional models: the chance a label is dropped */
    int64_t steps, batch, warmup;
    double lr, ema, clip;
    bool flip;
    uint64_t seed;
} cli_spec;

/* The defaults for a model kind ("mlp" or "unet"). */
void cli_spec_defaults(cli_spec *s, const char *model);
/* As "key=value\n" lines; and back, every key checked (ND_ERR names the
 * bad line). */
void cli_spec_format(const cli_spec *s, char *buf, size_t size);
int cli_spec_parse(const char *text, cli_spec *s, nd_error *err);
/* The schedule, the network, the denoiser and the training config the
 * spec describes. The model is built from the spec's seed. */
typedef struct cli_model {
    nd_schedule schedule;
    nd_mlp *mlp;
    nd_unet *unet;
    nd_module *module;
    nd_denoiser denoiser;
} cli_model;
int cli_model_build(const cli_spec *s, cli_model *m, nd_error *err);
void cli_model_free(cli_model *m);
/* The model of a checkpoint with its trained weights: the EMA's (copied
 * in) or the last ones; *step (if not NULL) receives the training step.
 * On ND_ERR nothing is left to free. */
int cli_model_load(const char *ckpt, const cli_spec *s, bool ema_weights, cli_model *m,
                   int64_t *step, nd_error *err);
nd_train_config cli_train_config(const cli_spec *s);
/* RUN (a folder or a checkpoint) opened for a command that reads it: the
 * checkpoint's path and spec, and the folder its files go to (out, or
 * RUN's); both buffers of `size`. points_refused: NULL, or the rest of the
 * message that refuses a model of points ("%s is a model of points" ...). */
int cli_open_run(const char *run, const char *out, const char *points_refused, char *ckpt,
                 char *dir, size_t size, cli_spec *s, nd_error *err);
/* The spec kept in a checkpoint file. */
int cli_checkpoint_spec(const char *path, cli_spec *s, nd_error *err);

/* Drawing samples from a model: Algorithm 2 over all T steps, or over S
 * respaced ones (nd_schedule_respace), or DDIM over S; points unclipped,
 * images clipped. A class-conditional model takes labels (NULL: none)
 * and a guidance weight. */
typedef struct cli_draw {
    int64_t n, steps; /* steps: 0 for all T */
    int64_t batch;    /* drawn in batches of this many (0: all n at once) */
    bool ddim;
    float eta;
    nd_spacing spacing;
    const nd_tensor *labels;
    float guidance;
    bool clip;
    nd_var_type var;
    uint64_t seed;
    const nd_ema *ema; /* the weights to use, or NULL for the model's */
    nd_sample_callback callback;
    void *ctx;
    int64_t every;
} cli_draw;
cli_draw cli_draw_defaults(const cli_spec *s);
nd_tensor *cli_draw_samples(const cli_model *m, const cli_spec *s, const cli_draw *d);

/* ---- data ---------------------------------------------------------------- */

/* A data set, drawn from by step number so that a resumed run sees the
 * same batches as an uninterrupted one. Points are [N, D]; images
 * [N, C, H, W] in [-1, 1]. */
typedef struct cli_data {
    char name[512];
    bool points;       /* points (toy or CSV) or images */
    bool generated;    /* drawn fresh (toy sets, shapes) or from `table` */
    nd_tensor *table;  /* points [N, D] or images [N, C, H, W] */
    nd_tensor *labels; /* [N] or NULL */
    int64_t dim;       /* D, or C */
    int64_t size;      /* H = W for images */
} cli_data;
/* name: a toy set (nd_toy_name), "shapes", "fashion-mnist", "mnist",
 * "cifar10" (files in dir; fashion-mnist defaults to Debian's
 * /usr/share/datasets/fashion-mnist), or a path: a .csv file of points, a
 * folder of IDX or CIFAR-10 files, or an IDX images file. test: the test
 * split where there is one. */
int cli_data_open(const char *name, const char *dir, bool test, cli_data *d, nd_error *err);
void cli_data_close(cli_data *d);
/* Batch `step` of n examples (in the current scope): toy sets and shapes
 * drawn fresh, tables sampled uniformly with replacement; a function of
 * (seed, step) alone. */
nd_tensor *cli_data_batch(const cli_data *d, uint64_t seed, int64_t step, int64_t n,
                          nd_tensor **labels);
/* The whole split with its labels (NULL if none), or for sets drawn on
 * the fly n fresh examples that no training batch of this seed draws. */
nd_tensor *cli_data_images(const cli_data *d, int64_t n, uint64_t seed, nd_tensor **labels);
#define CLI_FRESH_IMAGES 10000
/* Classes of the labels (0 when there are none): 3 for shapes, 10 for
 * Fashion-MNIST, MNIST and CIFAR-10. */
int64_t cli_data_classes(const cli_data *d);
/* A short description: "two moons (points, D = 2)", "60000 images 1x32x32". */
void cli_data_describe(const cli_data *d, char *buf, size_t size);
/* --n N images from d's split: ND_ERR when the split has fewer. */
int cli_check_count(const cli_data *d, int64_t n, const char *split, nd_error *err);
/* Whether a model kind ("mlp", "unet") fits the data; ND_ERR says why not. */
int cli_data_check_kind(const cli_data *d, const char *model, nd_error *err);
/* Whether the model of s fits the data (D or C x H x W); ND_ERR says why not. */
int cli_data_check_model(const cli_data *d, const cli_spec *s, nd_error *err);
/* What eval and interpolate read: the data (data, or the run's set when
 * data is ""), its test or training split, checked to fit the model; then
 * the model with its EMA or last weights. On ND_ERR nothing is left to
 * free. */
int cli_open_run_data(const char *ckpt, const cli_spec *s, const char *data, const char *data_dir,
                      bool test, bool ema_weights, cli_data *d, cli_model *m, int64_t *trained,
                      nd_error *err);

/* ---- progress ----------------------------------------------------------- */

/* One live line on a terminal (rewritten in place, at most ~8 times a
 * second) or a plain line every `period` seconds otherwise: step/total,
 * loss, its moving average, steps/s, time left. */
typedef struct cli_progress {
    FILE *f;
    bool tty;
    int64_t total, first;
    double start, last_print, period;
    double smooth; /* exponential moving average of the loss */
    int64_t seen;
    int width;
} cli_progress;
void cli_progress_begin(cli_progress *p, FILE *f, int64_t first, int64_t total);
void cli_progress_step(cli_progress *p, int64_t step, double loss);
/* A message between progress lines (clears the live line first). */
void cli_progress_note(cli_progress *p, const char *fmt, ...);
void cli_progress_end(cli_progress *p);
double cli_now(void); /* seconds, monotonic */

/* ---- files ---------------------------------------------------------------- */

/* dir/name into buf (ND_ERR if it does not fit). */
int cli_path(char *buf, size_t size, const char *dir, const char *name, nd_error *err);
/* Makes the folder if it is missing; ND_ERR if something else is there. */
int cli_mkdir(const char *dir, nd_error *err);
bool cli_exists(const char *path);
/* A checkpoint path from a folder (its checkpoint.safetensors) or a file. */
int cli_checkpoint_path(const char *arg, char *buf, size_t size, nd_error *err);
#define CLI_CHECKPOINT "checkpoint.safetensors"
/* Where a command's files go: out if given, else the checkpoint's folder. */
void cli_default_dir(const char *ckpt, const char *out, char *dir, size_t size);
/* Holds DIR/.lock for as long as the process lives, so that two runs
 * never write one folder; then removes what killed runs left half
 * written. ND_ERR if another process holds it. */
int cli_lock_run(const char *dir, int *fd, nd_error *err);

/* ---- pictures ------------------------------------------------------------ */

/* nd_png_write_grid with small images enlarged (each pixel a block) to
 * cells of at least 64 pixels, so that 16x16 or 28x28 pictures can be seen. */
int cli_write_grid(const char *path, const nd_tensor *batch, int rows, int cols, nd_error *err);
/* Samples as pictures: a grid of images, or points scattered over the data. */
int cli_write_samples_png(const char *path, const nd_tensor *x, const cli_data *d, uint64_t seed,
                          nd_error *err);

/* The reverse chain as the sampler's callback sees it: snapshots of x_t
 * and of the predicted x_0 (the first `rows` images; all points). */
#define CLI_CHAIN_ROWS 4
typedef struct cli_chain {
    nd_tensor **xt, **x0; /* persistent */
    int64_t *t;           /* the step t = i + 1 of each snapshot */
    int n, cap, rows;
} cli_chain;
void cli_chain_see(void *ctx, int64_t i, const nd_tensor *x_t, const nd_tensor *x0_pred);
void cli_chain_free(cli_chain *c);
/* Images: for each of the first rows examples, a row of x_t from x_T to
 * x_0 (final) and under it the x_0 predicted at each of those steps. */
int cli_chain_strip(const char *path, const cli_chain *c, const nd_tensor *final, nd_error *err);

/* The loss of each step, and its picture: the loss and its trailing mean. */
typedef struct cli_loss_log {
    double *step, *loss;
    int64_t n, cap;
} cli_loss_log;
void cli_loss_push(cli_loss_log *l, double step, double loss);
void cli_loss_free(cli_loss_log *l);
int cli_loss_png(const char *path, const cli_loss_log *l, nd_error *err);

/* ---- the feature classifier ---------------------------------------------- */

/* A classifier (ddpm/classifier.c) as `nanodiff classifier` saves it, with
 * what it was trained on. */
typedef struct cli_feature_net {
    nd_classifier *net;
    char data[512]; /* the --data it was trained on */
    int64_t size;   /* images are C x size x size */
    int64_t steps;
    double accuracy; /* on the test split */
} cli_feature_net;
void cli_classifier_default_path(const char *data, char *buf, size_t size);
/* On ND_ERR nothing is left to free. */
int cli_classifier_load(const char *path, cli_feature_net *c, nd_error *err);
void cli_classifier_free(cli_feature_net *c);
/* Features [N, F] of images [N, C, H, W], in batches, in eval mode. */
nd_tensor *cli_classifier_features(cli_feature_net *c, const nd_tensor *images);
/* counts[k]: images put in class k; returns how many match labels (if given). */
int64_t cli_classifier_predict(cli_feature_net *c, const nd_tensor *features,
                               const nd_tensor *labels, int64_t *counts);

/* ---- the commands ------------------------------------------------------- */

int cli_demo(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_sample(int argc, char **argv);
int cli_forward(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_field(int argc, char **argv);
int cli_interpolate(int argc, char **argv);
int cli_classifier(int argc, char **argv);
int cli_score(int argc, char **argv);
int cli_encode(int argc, char **argv);

/* Prints "nanodiff <cmd>: message" and returns the exit code for errors. */
int cli_fail(const char *cmd, const nd_error *err);
#define CLI_EXIT_USAGE 2

#endif
