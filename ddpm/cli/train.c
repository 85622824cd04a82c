/* nanodiff train: Algorithm 1 from the command line, with checkpoints that
 * are always whole, a loss log, previews, and --resume that continues bit
 * for bit. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const cli_command_help help = {
    "nanodiff train [--data SET] [--model mlp|unet] [options] --out DIR\n"
    "       nanodiff train --resume --out DIR [--steps N]",
    "Trains a denoiser with Algorithm 1 of the paper and writes into DIR: "
    "checkpoint.safetensors (the model, Adam's state, the EMA weights, the "
    "random state and these settings; written whole every --checkpoint-every "
    "steps, at the end and on Ctrl-C), loss.csv (step, loss, gradient norm, "
    "learning rate), loss.png (the loss and its moving average), and "
    "samples-STEP.png previews from the EMA weights. --resume goes on from "
    "DIR's checkpoint exactly as a run that was never stopped. SET is a 2-D "
    "toy set (moons, ring, checkerboard, pinwheel, swissroll), shapes "
    "(32x32 pictures drawn on the fly), fashion-mnist (Debian's "
    "dataset-fashion-mnist package, or --data-dir), mnist or cifar10 (with "
    "--data-dir), a .csv file of points, or a folder of IDX or CIFAR-10 "
    "files. Points train the MLP, images the UNet; defaults shown are those "
    "of --model mlp (give --model unet --help for the UNet's)."};

static volatile sig_atomic_t stop_signal = 0;
static void on_signal(int sig) { stop_signal = sig; }

/* Ctrl+C (SIGINT) or kill (SIGTERM) ends the run at the next step, with
 * a checkpoint. */
#ifdef _WIN32
/* The C runtime raises SIGINT on Ctrl+C and has signal() alone; it puts
 * the default back once the handler runs, so a second Ctrl+C ends the
 * process at once. */
static void (*old_int)(int), (*old_term)(int);
static void catch_signals(void) {
    old_int = signal(SIGINT, on_signal);
    old_term = signal(SIGTERM, on_signal);
}
static void restore_signals(void) {
    signal(SIGINT, old_int);
    signal(SIGTERM, old_term);
}
#else
static struct sigaction old_int, old_term;
static void catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
}
static void restore_signals(void) {
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}
#endif

#define CSV_HEADER "step,loss,grad_norm,lr\n"

/* loss.csv cut back to the lines of steps 1..upto, which the checkpoint
 * holds (a killed run may have logged more), and read into log; then
 * opened to append. A missing log starts afresh. Binary mode: the same
 * bytes on every system (Windows' text mode would write CRLF and make
 * ftell's offsets unusable for the cut). */
static FILE *csv_open(const char *path, int64_t upto, cli_loss_log *log, nd_error *err) {
    FILE *f = upto > 0 ? fopen(path, "rb") : NULL;
    long keep = 0;
    if (f) {
        char line[256];
        if (!fgets(line, sizeof line, f) || strcmp(line, CSV_HEADER)) {
            fclose(f);
            nd_error_set(err, "%s is not a loss log of nanodiff train", path);
            return NULL;
        }
        keep = ftell(f);
        for (int64_t expect = 1; expect <= upto && fgets(line, sizeof line, f); expect++) {
            long long step;
            double loss;
            if (!strchr(line, '\n') || sscanf(line, "%lld,%lf", &step, &loss) != 2 ||
                step != expect)
                break;
            cli_loss_push(log, (double)step, loss);
            keep = ftell(f);
        }
        fclose(f);
        if (truncate(path, keep) != 0) {
            nd_error_set(err, "%s: %s", path, strerror(errno));
            return NULL;
        }
    }
    f = fopen(path, keep ? "ab" : "wb");
    if (!f) {
        nd_error_set(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (!keep) fputs(CSV_HEADER, f);
    return f;
}

/* ---- the command ------------------------------------------------------- */

typedef struct train_args {
    const char *data, *data_dir, *model, *unet, *ch_mult, *attn, *schedule, *predicts, *loss, *flip,
        *out;
    int64_t width, depth, emb, ch, blocks, timesteps, steps, batch, warmup, seed, threads,
        checkpoint_every, sample_every, preview_steps;
    double dropout, lr, ema, clip, beta_start, beta_end, label_drop;
    bool resume, classes;
} train_args;

/* The model named on the command line, before option parsing, so that
 * the defaults shown and used are that model's. */
static const char *model_word(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) return argv[i + 1];
        if (!strncmp(argv[i], "--model=", 8)) return argv[i] + 8;
    }
    return "mlp";
}

/* The spec from the options (a fresh run). */
static int spec_from_args(const train_args *a, cli_option *o, int no, const cli_data *d,
                          cli_spec *s, nd_error *err) {
    if (cli_data_check_kind(d, a->model, err) != ND_OK) return ND_ERR;
    cli_spec_defaults(s, a->model);
    snprintf(s->data, sizeof s->data, "%s", a->data);
    snprintf(s->data_dir, sizeof s->data_dir, "%s", a->data_dir);
    snprintf(s->schedule, sizeof s->schedule, "%s", a->schedule);
    snprintf(s->predicts, sizeof s->predicts, "%s", a->predicts);
    snprintf(s->loss, sizeof s->loss, "%s", a->loss);
    s->T = a->timesteps;
    s->beta_start = a->beta_start;
    s->beta_end = a->beta_end;
    s->steps = a->steps;
    s->batch = a->batch;
    s->lr = a->lr;
    s->warmup = a->warmup;
    s->ema = a->ema;
    s->clip = a->clip;
    s->flip = !strcmp(a->flip, "on");
    s->seed = (uint64_t)a->seed;
    if (!(s->beta_start < s->beta_end))
        return nd_error_set(err, "--beta-start %g must be below --beta-end %g", s->beta_start,
                            s->beta_end);
    if (!strcmp(s->model, "mlp")) {
        s->mlp.dim = d->dim;
        s->mlp.width = a->width;
        s->mlp.depth = a->depth;
        s->mlp.emb = a->emb;
        if (a->emb % 2) return nd_error_set(err, "--emb %lld is not even", (long long)a->emb);
        if (a->classes)
            return nd_error_set(err, "--classes: class conditioning is for the UNet on images");
        return ND_OK;
    }
    snprintf(s->unet_name, sizeof s->unet_name, "%s", a->unet);
    if (nd_unet_config_named(a->unet, &s->unet, err) != ND_OK) return ND_ERR;
    nd_unet_config *u = &s->unet;
    u->in_channels = u->out_channels = d->dim;
    u->resolution = d->size;
    if (cli_find(o, no, "--ch")->given) u->ch = a->ch;
    if (cli_find(o, no, "--blocks")->given) u->num_res_blocks = a->blocks;
    if (cli_find(o, no, "--dropout")->given) u->dropout = (float)a->dropout;
    if (cli_find(o, no, "--ch-mult")->given &&
        cli_int_list("--ch-mult", a->ch_mult, 1, 64, u->ch_mult, ND_UNET_MAX_LEVELS, &u->levels,
                     err) != ND_OK)
        return ND_ERR;
    if (cli_find(o, no, "--attn")->given) {
        if (!strcmp(a->attn, "none"))
            u->nattn = 0;
        else if (cli_int_list("--attn", a->attn, 1, 4096, u->attn_resolutions, ND_UNET_MAX_LEVELS,
                              &u->nattn, err) != ND_OK)
            return ND_ERR;
    }
    s->label_drop = a->label_drop;
    if (a->classes) {
        u->num_classes = cli_data_classes(d);
        if (u->num_classes < 1) return nd_error_set(err, "--classes: %s has no labels", d->name);
    }
    if (u->ch % u->groups) /* keep GroupNorm's groups dividing the widths */
        u->groups = u->ch % 8 == 0 ? 8 : u->ch % 4 == 0 ? 4 : u->ch % 2 == 0 ? 2 : 1;
    if (nd_unet_config_check(u, err) != ND_OK) return ND_ERR;
    return ND_OK;
}

static int save(nd_trainer *tr, const cli_spec *s, const char *path, nd_error *err) {
    char text[4096];
    cli_spec_format(s, text, sizeof text);
    return nd_trainer_save(tr, path, text, err);
}

/* A picture of what the EMA weights draw now. */
static int preview(const cli_model *m, const cli_spec *s, const cli_data *d, const nd_trainer *tr,
                   int64_t S, const char *dir, nd_error *err) {
    char name[64], path[1100];
    snprintf(name, sizeof name, "samples-%07lld.png", (long long)tr->step);
    if (cli_path(path, sizeof path, dir, name, err) != ND_OK) return ND_ERR;
    nd_scope *scope = nd_scope_begin();
    cli_draw draw = cli_draw_defaults(s);
    draw.n = d->points ? 2000 : 16;
    draw.steps = S;
    draw.ema = tr->ema;
    nd_tensor *x = cli_draw_samples(m, s, &draw);
    int rc = cli_write_samples_png(path, x, d, s->seed, err);
    nd_scope_end(scope);
    return rc;
}

int cli_train(int argc, char **argv) {
    const char *mw = model_word(argc, argv);
    cli_spec dflt;
    cli_spec_defaults(&dflt, strcmp(mw, "unet") ? "mlp" : "unet");
    bool mlp = !strcmp(dflt.model, "mlp");
    train_args a = {.data = mlp ? "moons" : "shapes",
                    .data_dir = "",
                    .model = dflt.model,
                    .unet = "small",
                    .ch_mult = "1,2,2",
                    .attn = "16",
                    .schedule = "linear",
                    .predicts = "eps",
                    .loss = "mse",
                    .flip = dflt.flip ? "on" : "off",
                    .out = "",
                    .width = dflt.mlp.width,
                    .depth = dflt.mlp.depth,
                    .emb = dflt.mlp.emb,
                    .ch = dflt.unet.ch,
                    .blocks = dflt.unet.num_res_blocks,
                    .timesteps = dflt.T,
                    .steps = dflt.steps,
                    .batch = dflt.batch,
                    .warmup = dflt.warmup,
                    .seed = 0,
                    .threads = nd_get_num_threads(),
                    .checkpoint_every = mlp ? 1000 : 500,
                    .sample_every = mlp ? 2000 : 1000,
                    .preview_steps = mlp ? 0 : 100,
                    .dropout = dflt.unet.dropout,
                    .lr = dflt.lr,
                    .ema = dflt.ema,
                    .clip = dflt.clip,
                    .beta_start = dflt.beta_start,
                    .beta_end = dflt.beta_end,
                    .label_drop = dflt.label_drop};
    cli_option o[] = {
        CLI_OPT_TEXT("--data", &a.data, NULL, "SET", "what to learn (see above)"),
        CLI_OPT_TEXT("--data-dir", &a.data_dir, NULL, "DIR",
                     "the folder of the mnist, fashion-mnist or cifar10 files"),
        CLI_OPT_TEXT("--model", &a.model, "mlp|unet", "NAME", "the denoiser"),
        CLI_OPT_INT("--width", &a.width, 1, 65536, "N", "MLP: hidden width"),
        CLI_OPT_INT("--depth", &a.depth, 0, 256, "N", "MLP: residual blocks"),
        CLI_OPT_INT("--emb", &a.emb, 2, 4096, "N",
                    "MLP: sinusoidal embedding size of each coordinate and of t (even)"),
        CLI_OPT_TEXT("--unet", &a.unet, "small|tiny|cifar10", "NAME",
                     "UNet: the configuration to start from"),
        CLI_OPT_INT("--ch", &a.ch, 1, 4096, "N", "UNet: base channels"),
        CLI_OPT_TEXT("--ch-mult", &a.ch_mult, NULL, "LIST", "UNet: channel multiplier per level"),
        CLI_OPT_INT("--blocks", &a.blocks, 1, 16, "N", "UNet: residual blocks per level"),
        CLI_OPT_TEXT("--attn", &a.attn, NULL, "LIST",
                     "UNet: resolutions with self-attention, or none"),
        CLI_OPT_REAL("--dropout", &a.dropout, 0, 0.99, "P", "UNet: dropout"),
        CLI_OPT_FLAG("--classes", &a.classes,
                     "UNet: condition on the data's labels (a class embedding; shapes, "
                     "fashion-mnist, mnist, cifar10)"),
        CLI_OPT_REAL("--label-drop", &a.label_drop, 0, 1, "P",
                     "with --classes: the chance each label is dropped, so that one model "
                     "also learns the unconditional eps (for guidance)"),
        CLI_OPT_TEXT("--schedule", &a.schedule, "linear|cosine", "NAME", "the betas"),
        CLI_OPT_INT("--timesteps", &a.timesteps, 2, 100000, "T", "diffusion steps"),
        CLI_OPT_REAL("--beta-start", &a.beta_start, 1e-9, 0.5, "B", "linear: beta_1"),
        CLI_OPT_REAL("--beta-end", &a.beta_end, 1e-9, 0.999, "B", "linear: beta_T"),
        CLI_OPT_TEXT("--predicts", &a.predicts, "eps|x0|mean", "WHAT",
                     "what the network predicts (section 4.4)"),
        CLI_OPT_TEXT("--loss", &a.loss, "mse|vlb", "NAME",
                     "mse: L_simple (Eq. 14) on the prediction; vlb: the true bound"),
        CLI_OPT_INT("--steps", &a.steps, 1, INT64_C(1) << 40, "N",
                    "training steps in all (with --resume: the new total)"),
        CLI_OPT_INT("--batch", &a.batch, 1, 1 << 20, "N", "examples per step"),
        CLI_OPT_REAL("--lr", &a.lr, 0, 10, "LR", "Adam's learning rate"),
        CLI_OPT_INT("--warmup", &a.warmup, 0, INT64_C(1) << 40, "N",
                    "steps of linear learning-rate warmup"),
        CLI_OPT_REAL("--ema", &a.ema, 0, 1, "DECAY", "EMA decay of the weights"),
        CLI_OPT_REAL("--clip", &a.clip, 0, 1e30, "NORM", "global gradient-norm clipping (0: off)"),
        CLI_OPT_TEXT("--flip", &a.flip, "on|off", "on|off", "random left-right flips of images"),
        CLI_OPT_INT("--seed", &a.seed, 0, (double)INT64_MAX, "N",
                    "seed of every random draw (weights, batches, t, noise)"),
        CLI_OPT_INT("--threads", &a.threads, 1, 1024, "N",
                    "threads (results are the same for any count)"),
        CLI_OPT_TEXT("--out", &a.out, NULL, "DIR", "the run's folder (required)"),
        CLI_OPT_INT("--checkpoint-every", &a.checkpoint_every, 1, INT64_C(1) << 40, "N",
                    "steps between checkpoints"),
        CLI_OPT_INT("--sample-every", &a.sample_every, 0, INT64_C(1) << 40, "N",
                    "steps between preview pictures (0: only at the end)"),
        CLI_OPT_INT("--preview-steps", &a.preview_steps, 0, 100000, "S",
                    "previews sample over S respaced steps (0: all T, Algorithm 2)"),
        CLI_OPT_FLAG("--resume", &a.resume, "continue the run in --out from its checkpoint"),
    };
    const int no = (int)(sizeof o / sizeof o[0]);
    nd_error err;
    const char *pos[1];
    int npos;
    int pr = cli_parse(argc, argv, o, no, &help, pos, 0, &npos, &err);
    if (pr == 1) return 0;
    if (pr == ND_OK && !a.out[0]) pr = nd_error_set(&err, "--out DIR is required");
    if (pr != ND_OK) {
        fprintf(stderr, "nanodiff train: %s\n(see nanodiff train --help)\n", err.message);
        return CLI_EXIT_USAGE;
    }
    if (a.resume) { /* the run's settings are the checkpoint's */
        static const char *const may[] = {
            "--out",          "--steps",        "--threads", "--resume", "--checkpoint-every",
            "--sample-every", "--preview-steps"};
        for (int i = 0; i < no; i++) {
            bool ok = false;
            for (size_t k = 0; k < sizeof may / sizeof may[0]; k++)
                ok |= !strcmp(o[i].name, may[k]);
            if (o[i].given && !ok) {
                fprintf(stderr,
                        "nanodiff train: %s cannot change a run being resumed (its "
                        "settings are in its checkpoint); only --steps, --threads and the "
                        "checkpoint and preview periods can\n",
                        o[i].name);
                return CLI_EXIT_USAGE;
            }
        }
    }
    nd_set_num_threads((int)a.threads);

    char ckpt[1100], csv[1100], png[1100];
    if (cli_path(ckpt, sizeof ckpt, a.out, CLI_CHECKPOINT, &err) != ND_OK ||
        cli_path(csv, sizeof csv, a.out, "loss.csv", &err) != ND_OK ||
        cli_path(png, sizeof png, a.out, "loss.png", &err) != ND_OK)
        return cli_fail("train", &err);
    cli_spec s;
    if (a.resume) {
        if (!cli_exists(ckpt)) {
            nd_error_set(&err,
                         "%s: no checkpoint to resume from (start the run without "
                         "--resume)",
                         ckpt);
            return cli_fail("train", &err);
        }
        if (cli_checkpoint_spec(ckpt, &s, &err) != ND_OK) return cli_fail("train", &err);
        if (cli_find(o, no, "--steps")->given) s.steps = a.steps;
    } else if (cli_exists(ckpt)) {
        nd_error_set(&err,
                     "%s already holds a run: continue it with --resume, or choose "
                     "another --out",
                     a.out);
        return cli_fail("train", &err);
    }

    cli_data d;
    if (cli_data_open(a.resume ? s.data : a.data, a.resume ? s.data_dir : a.data_dir, false, &d,
                      &err) != ND_OK)
        return cli_fail("train", &err);
    if (!a.resume && !cli_find(o, no, "--model")->given) /* the data picks the model */
        a.model = d.points ? "mlp" : "unet";
    if (!a.resume && strcmp(a.model, dflt.model) && !cli_find(o, no, "--model")->given) {
        /* the defaults were the other model's: take this one's where not given */
        cli_spec other;
        cli_spec_defaults(&other, a.model);
        if (!cli_find(o, no, "--batch")->given) a.batch = other.batch;
        if (!cli_find(o, no, "--lr")->given) a.lr = other.lr;
        if (!cli_find(o, no, "--warmup")->given) a.warmup = other.warmup;
        if (!cli_find(o, no, "--ema")->given) a.ema = other.ema;
        if (!cli_find(o, no, "--flip")->given) a.flip = other.flip ? "on" : "off";
        bool m = !strcmp(a.model, "mlp");
        if (!cli_find(o, no, "--checkpoint-every")->given) a.checkpoint_every = m ? 1000 : 500;
        if (!cli_find(o, no, "--sample-every")->given) a.sample_every = m ? 2000 : 1000;
        if (!cli_find(o, no, "--preview-steps")->given) a.preview_steps = m ? 0 : 100;
    }
    int rc = ND_OK;
    if (!a.resume) rc = spec_from_args(&a, o, no, &d, &s, &err);
    if (rc == ND_OK) rc = cli_data_check_model(&d, &s, &err);
    if (rc == ND_OK && !a.resume) rc = cli_mkdir(a.out, &err);
    int lock = -1;
    if (rc == ND_OK) rc = cli_lock_run(a.out, &lock, &err);
    cli_model m;
    if (rc != ND_OK || cli_model_build(&s, &m, &err) != ND_OK) {
        if (lock >= 0) close(lock);
        cli_data_close(&d);
        return cli_fail("train", &err);
    }
    nd_trainer *tr = nd_trainer_new(&m.schedule, m.denoiser, cli_train_config(&s), s.seed);
    if (a.resume) rc = nd_trainer_load(tr, ckpt, &err);
    cli_loss_log log = {0};
    FILE *csvf = NULL;
    if (rc == ND_OK && !(csvf = csv_open(csv, tr->step, &log, &err))) rc = ND_ERR;
    if (rc == ND_OK && tr->step >= s.steps) {
        nd_error_set(&err,
                     "the run in %s has done %lld of %lld steps already (give a larger "
                     "--steps to go on)",
                     a.out, (long long)tr->step, (long long)s.steps);
        rc = ND_ERR;
    }
    if (rc != ND_OK) goto done;

    char about[640];
    cli_data_describe(&d, about, sizeof about);
    printf("%s %s: %s\n", a.resume ? "resuming" : "training", a.out, about);
    if (d.points && d.table) { /* the schedule takes data of scale ~1 to N(0, I) */
        double most = 0;
        for (int64_t i = 0; i < nd_numel(d.table); i++)
            most = fmax(most, fabs(nd_data(d.table)[i]));
        if (most > 4.0)
            printf("note: the points reach %g; the diffusion schedule suits data of scale about 1 "
                   "(x_T is then close to N(0, I)), so consider scaling them first\n",
                   most);
    }
    printf("model: %s, %lld parameters; T = %lld (%s); batch %lld, lr %g, EMA %g; %lld steps%s "
           "(threads %d, kernels %s)\n",
           s.model, (long long)nd_num_parameters(m.module), (long long)s.T, s.schedule,
           (long long)s.batch, s.lr, s.ema, (long long)s.steps, a.resume ? " in all" : "",
           nd_get_num_threads(), nd_kernels_name());
    if (a.resume) printf("from step %lld\n", (long long)tr->step);
    fflush(stdout);

    catch_signals();

    cli_progress p;
    cli_progress_begin(&p, stderr, tr->step, s.steps);
    while (tr->step < s.steps && !stop_signal) {
        nd_scope *scope = nd_scope_begin();
        nd_tensor *labels, *x0 = cli_data_batch(&d, s.seed, tr->step, s.batch, &labels);
        nd_train_stats st = s.unet.num_classes > 0 && !strcmp(s.model, "unet")
                                ? nd_train_step_labels(tr, x0, labels)
                                : nd_train_step(tr, x0);
        nd_scope_end(scope);
        fprintf(csvf, "%lld,%.9g,%.9g,%.9g\n", (long long)tr->step, st.loss, st.grad_norm, st.lr);
        cli_loss_push(&log, (double)tr->step, st.loss);
        cli_progress_step(&p, tr->step, st.loss);
        if (!isfinite(st.loss)) {
            nd_error_set(&err,
                         "the loss is %g at step %lld; stopping without a checkpoint (the "
                         "last one is whole; try a lower --lr)",
                         st.loss, (long long)tr->step);
            rc = ND_ERR;
            break;
        }
        bool last = tr->step == s.steps;
        if (last || stop_signal || tr->step % a.checkpoint_every == 0) {
            /* the log first: it may run ahead of the checkpoint, never behind */
            if (fflush(csvf) != 0) {
                nd_error_set(&err, "%s: %s", csv, strerror(errno));
                rc = ND_ERR;
                break;
            }
            if ((rc = save(tr, &s, ckpt, &err)) != ND_OK) break;
            if ((rc = cli_loss_png(png, &log, &err)) != ND_OK) break;
        }
        if (!stop_signal && (last || (a.sample_every && tr->step % a.sample_every == 0))) {
            cli_progress_note(&p, "");
            if ((rc = preview(&m, &s, &d, tr, a.preview_steps, a.out, &err)) != ND_OK) break;
        }
    }
    cli_progress_end(&p);
    restore_signals();
    if (rc == ND_OK && stop_signal) {
        printf("stopped by %s at step %lld of %lld; the checkpoint is written. Go on with:\n"
               "  nanodiff train --resume --out %s\n",
               stop_signal == SIGINT ? "Ctrl-C" : "a signal", (long long)tr->step,
               (long long)s.steps, a.out);
    } else if (rc == ND_OK) {
        printf("done: %lld steps. In %s: checkpoint.safetensors, loss.csv, loss.png, "
               "samples-%07lld.png\nsample from it with: nanodiff sample %s\n",
               (long long)tr->step, a.out, (long long)tr->step, a.out);
    }
done:
    if (csvf && fclose(csvf) != 0 && rc == ND_OK)
        rc = nd_error_set(&err, "%s: %s", csv, strerror(errno));
    cli_loss_free(&log);
    nd_trainer_free(tr);
    cli_model_free(&m);
    cli_data_close(&d);
    close(lock);
    if (rc != ND_OK) return cli_fail("train", &err);
    return stop_signal ? 128 + (int)stop_signal : 0;
}
