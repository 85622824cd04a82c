/* Algorithm 1: what one step draws and computes, its memory, its bits for
 * any thread count, a resumed run equal to an uninterrupted one, and an
 * MLP that learns two moons well enough that its samples land on them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddpm/ddpm.h"
#include "helpers.h"

/* ---- a denoiser that shows what it was given: eps_theta = w x_t ---------- */

typedef struct {
    nd_module base;
    nd_tensor *w;
    nd_tensor *seen; /* a copy of the last x_t, outside every scope */
} probe;
static void probe_destroy(nd_module *m) {
    nd_free(((probe *)m)->seen);
    nd_dealloc(m, sizeof(probe));
}
static nd_tensor *probe_forward(void *self, const nd_tensor *x, const nd_tensor *t,
                                const nd_tensor *y, nd_rng *r) {
    (void)y;
    (void)t;
    (void)r;
    probe *p = self;
    nd_free(p->seen);
    p->seen = nd_persist(nd_clone(nd_detach(x)));
    return nd_mul(p->w, x);
}
static probe *probe_new(float w) {
    probe *p = nd_alloc(sizeof *p);
    nd_module_init(&p->base, "Probe", probe_destroy);
    p->w = nd_module_param(&p->base, "w", nd_full(ND_SHAPE(1), w));
    p->seen = NULL;
    return p;
}

/* One step draws, from the trainer's rng, the flips, then t, then eps; its
 * loss, gradient norm and learning rate are what they say; Adam's first
 * step moves w by lr_1 against the gradient's sign. */
START_TEST(a_step_draws_and_reports_as_documented) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    probe *p = probe_new(0.25f);
    nd_train_config cfg = nd_train_defaults();
    cfg.random_flip = true;
    cfg.optim.warmup_steps = 10;
    nd_denoiser d = {probe_forward, p, &p->base, ND_PRED_EPS, NULL, 0};
    nd_trainer *tr = nd_trainer_new(&s, d, cfg, 123);
    /* 4 images whose rows read 0, 1, 2 left to right */
    const int64_t n = 4;
    nd_tensor *x0 = nd_empty(ND_SHAPE(n, 1, 2, 3));
    for (int64_t e = 0; e < nd_numel(x0); e++) nd_data(x0)[e] = (float)(e % 3) - 1.0f;
    nd_rng replay = tr->rng;
    nd_train_stats st = nd_train_step(tr, x0);

    nd_tensor *coin = nd_rand(&replay, ND_SHAPE(n));
    nd_tensor *flipped = nd_clone(x0);
    int flips = 0;
    for (int64_t k = 0; k < n; k++)
        if (nd_data(coin)[k] < 0.5f) {
            flips++;
            for (int64_t e = k * 6; e < k * 6 + 6; e++) nd_data(flipped)[e] = -nd_data(x0)[e];
        }
    nd_tensor *t = nd_sample_timesteps(&s, n, &replay);
    nd_tensor *eps = nd_randn(&replay, ND_SHAPE(n, 1, 2, 3));
    ck_assert_uint_eq(replay.offset, tr->rng.offset);
    nd_tensor *xt = nd_q_sample(&s, flipped, t, eps);
    ck_assert_msg(nd_allclose(p->seen, xt, 0, 0, false), "x_t is not q_sample of the "
                  "flipped batch at the replayed draws (%d flips)", flips);
    double loss = 0, grad = 0;
    for (int64_t e = 0; e < nd_numel(xt); e++) {
        double diff = nd_data(eps)[e] - 0.25 * nd_data(xt)[e];
        loss += diff * diff;
        grad += -2 * diff * nd_data(xt)[e];
    }
    loss /= (double)nd_numel(xt);
    grad /= (double)nd_numel(xt);
    ck_assert_near(st.loss, loss, 1e-6);
    ck_assert_near(st.grad_norm, fabs(grad), 1e-5);
    ck_assert_near(st.lr, 2e-4 / 10, 1e-9);
    ck_assert_int_eq(tr->step, 1);
    /* Adam's first step is lr_1 g / (|g| + eps) */
    ck_assert_near(nd_data(p->w)[0], 0.25 - (grad > 0 ? 1 : -1) * 2e-5, 1e-8);
    st = nd_train_step(tr, x0);
    ck_assert_near(st.lr, 2e-4 * 2 / 10, 1e-9);
    nd_trainer_free(tr);
    nd_module_free(&p->base);
    nd_schedule_free(&s);
}
END_TEST

/* Labels: every step drops each example's label (to -1) with probability
 * label_drop, from the trainer's rng after the flips, and keeps the
 * others as given. 300 steps of 40 at p = 0.3: within 5 deviations. */
static float seen_labels[64];
static int64_t seen_n;
static nd_tensor *label_probe(void *self, const nd_tensor *x, const nd_tensor *t,
                              const nd_tensor *y, nd_rng *r) {
    (void)t;
    (void)r;
    if (y) {
        seen_n = y->shape[0];
        for (int64_t k = 0; k < seen_n && k < 64; k++) seen_labels[k] = nd_get(y, &k);
    }
    return nd_mul(((probe *)self)->w, x);
}

START_TEST(labels_are_dropped_at_the_configured_rate) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 100, 1e-3, 0.2, &err), ND_OK);
    probe *p = probe_new(0.1f);
    nd_train_config cfg = nd_train_defaults();
    cfg.label_drop = 0.3f;
    nd_trainer *tr = nd_trainer_new(&s, (nd_denoiser){label_probe, p, &p->base, ND_PRED_EPS,
                                                      NULL, 0}, cfg, 5);
    const int64_t n = 40;
    nd_tensor *x0 = nd_zeros(ND_SHAPE(n, 3));
    nd_tensor *labels = nd_empty(ND_SHAPE(n));
    for (int64_t k = 0; k < n; k++) nd_data(labels)[k] = (float)(k % 7);
    int64_t dropped = 0, total = 0;
    for (int step = 0; step < 300; step++) {
        nd_rng replay = tr->rng;
        seen_n = 0;
        nd_train_step_labels(tr, x0, labels);
        ck_assert_int_eq(seen_n, n);
        nd_tensor *coin = nd_rand(&replay, ND_SHAPE(n));
        for (int64_t k = 0; k < n; k++) {
            bool drop = nd_data(coin)[k] < 0.3f;
            ck_assert(seen_labels[k] == (drop ? -1.0f : (float)(k % 7)));
            dropped += drop;
            total++;
        }
        nd_free(coin);
    }
    double sd = sqrt(total * 0.3 * 0.7);
    ck_assert_msg(fabs((double)dropped - 0.3 * total) < 5 * sd, "%lld of %lld dropped",
                  (long long)dropped, (long long)total);
    cfg.label_drop = 1.5f;
    EXPECT_FATAL(nd_trainer_new(&s, (nd_denoiser){label_probe, p, &p->base, ND_PRED_EPS, NULL, 0},
                                cfg, 0),
                 "nanodiff: trainer_new: label_drop 1.5 is not in [0, 1]");
    nd_trainer_free(tr);
    nd_module_free(&p->base);
    nd_schedule_free(&s);
}
END_TEST

static nd_unet *tiny_unet(uint64_t seed, float dropout) {
    nd_unet_config c;
    nd_error err;
    ck_assert_int_eq(nd_unet_config_named("tiny", &c, &err), ND_OK);
    c.dropout = dropout;
    nd_rng g = nd_rng_init(seed, 0);
    return nd_unet_new(&c, &g);
}

static nd_train_config tiny_config(void) {
    nd_train_config cfg = nd_train_defaults();
    cfg.optim.lr = 1e-3;
    cfg.optim.warmup_steps = 3;
    cfg.ema_decay = 0.9;
    cfg.random_flip = true;
    return cfg;
}

/* Activations, tape and gradients of a step are gone when it returns:
 * the bytes the library holds are the same after step 1 and step 100. */
START_TEST(step_memory_is_released) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    nd_unet *u = tiny_unet(1, 0.1f);
    nd_trainer *tr = nd_trainer_new(&s, nd_unet_denoiser(u), tiny_config(), 5);
    nd_rng g = nd_rng_init(9, 0);
    nd_tensor *x0 = nd_persist(nd_clamp(nd_randn(&g, ND_SHAPE(2, 1, 8, 8)), -1, 1));
    nd_train_step(tr, x0);
    size_t live = nd_mem_live();
    ck_assert_uint_eq(nd_tape_length(), 0);
    for (int k = 1; k < 100; k++) nd_train_step(tr, x0);
    ck_assert_uint_eq(nd_mem_live(), live);
    ck_assert_uint_eq(nd_tape_length(), 0);
    nd_free(x0);
    nd_trainer_free(tr);
    nd_module_free(nd_unet_module(u));
    nd_schedule_free(&s);
}
END_TEST

typedef struct {
    double loss[8];
    nd_param_list params, ema;
} run_result;

/* `steps` steps of a fresh tiny UNet (dropout and flips on); the caller
 * compares and then frees. */
static void train_tiny(const nd_schedule *s, nd_unet **u, nd_trainer **tr, int steps,
                       double *losses, const nd_tensor *x0) {
    *u = tiny_unet(7, 0.1f);
    *tr = nd_trainer_new(s, nd_unet_denoiser(*u), tiny_config(), 99);
    for (int k = 0; k < steps; k++) losses[k] = nd_train_step(*tr, x0).loss;
}

static void assert_same_lists(nd_param_list a, nd_param_list b, const char *what) {
    ck_assert_int_eq(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        ck_assert_str_eq(a.items[i].name, b.items[i].name);
        ck_assert_msg(memcmp(nd_data(a.items[i].value), nd_data(b.items[i].value),
                             (size_t)nd_numel(a.items[i].value) * sizeof(float)) == 0,
                      "%s: %s differs", what, a.items[i].name);
    }
}

static void assert_same_training(nd_trainer *a, nd_trainer *b) {
    nd_param_list pa = nd_parameters(a->denoiser.module), pb = nd_parameters(b->denoiser.module);
    assert_same_lists(pa, pb, "model");
    nd_param_list_free(&pa);
    nd_param_list_free(&pb);
    pa = nd_ema_state(a->ema);
    pb = nd_ema_state(b->ema);
    assert_same_lists(pa, pb, "ema");
    nd_param_list_free(&pa);
    nd_param_list_free(&pb);
    pa = nd_optimizer_state(a->optimizer);
    pb = nd_optimizer_state(b->optimizer);
    assert_same_lists(pa, pb, "optimizer");
    nd_param_list_free(&pa);
    nd_param_list_free(&pb);
    ck_assert_int_eq(a->step, b->step);
    ck_assert_uint_eq(a->rng.offset, b->rng.offset);
}

/* A training run gives the same bits with 1, 2 and 3 threads. */
START_TEST(same_bits_for_any_thread_count) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    nd_rng g = nd_rng_init(9, 1);
    nd_tensor *x0 = nd_clamp(nd_randn(&g, ND_SHAPE(3, 1, 8, 8)), -1, 1);
    int saved = nd_get_num_threads();
    nd_unet *u[3];
    nd_trainer *tr[3];
    double loss[3][4];
    for (int th = 1; th <= 3; th++) {
        nd_set_num_threads(th);
        train_tiny(&s, &u[th - 1], &tr[th - 1], 4, loss[th - 1], x0);
    }
    nd_set_num_threads(saved);
    for (int th = 2; th <= 3; th++) {
        ck_assert(memcmp(loss[0], loss[th - 1], sizeof loss[0]) == 0);
        assert_same_training(tr[0], tr[th - 1]);
    }
    for (int k = 0; k < 3; k++) {
        nd_trainer_free(tr[k]);
        nd_module_free(nd_unet_module(u[k]));
    }
    nd_schedule_free(&s);
}
END_TEST

/* N steps, a checkpoint, a fresh model and trainer (other seeds) loaded
 * from it and M more steps: the same bits as N + M steps in one go. */
START_TEST(resumed_run_equals_an_uninterrupted_one) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    nd_rng g = nd_rng_init(9, 2);
    nd_tensor *x0 = nd_clamp(nd_randn(&g, ND_SHAPE(2, 1, 8, 8)), -1, 1);
    char dir[300], path[340];
    t_dir_make(dir, sizeof dir, "nd-ddpm");
    snprintf(path, sizeof path, "%s/run.safetensors", dir);

    nd_unet *whole_u;
    nd_trainer *whole;
    double whole_loss[5];
    train_tiny(&s, &whole_u, &whole, 5, whole_loss, x0);

    nd_unet *first_u;
    nd_trainer *first;
    double loss[5];
    train_tiny(&s, &first_u, &first, 3, loss, x0);
    ck_assert_int_eq(nd_trainer_save(first, path, "tiny", &err), ND_OK);
    nd_trainer_free(first);
    nd_module_free(nd_unet_module(first_u));

    nd_unet *u = tiny_unet(1234, 0.1f);
    nd_trainer *tr = nd_trainer_new(&s, nd_unet_denoiser(u), tiny_config(), 4321);
    ck_assert_int_eq(nd_trainer_load(tr, path, &err), ND_OK);
    ck_assert_int_eq(tr->step, 3);
    for (int k = 3; k < 5; k++) loss[k] = nd_train_step(tr, x0).loss;
    ck_assert(memcmp(loss, whole_loss, sizeof loss) == 0);
    assert_same_training(whole, tr);

    /* a file that is not a checkpoint changes nothing */
    char bad[340];
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    FILE *f = fopen(bad, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("not a checkpoint", f);
    fclose(f);
    ck_assert_int_eq(nd_trainer_load(tr, bad, &err), ND_ERR);
    ck_assert_int_eq(tr->step, 5);
    assert_same_training(whole, tr);

    unlink(bad);
    unlink(path);
    rmdir(dir);
    nd_trainer_free(tr);
    nd_module_free(nd_unet_module(u));
    nd_trainer_free(whole);
    nd_module_free(nd_unet_module(whole_u));
    nd_schedule_free(&s);
}
END_TEST

/* ---- two moons ------------------------------------------------------------ */

/* Energy distance between two point sets (Szekely & Rizzo 2013):
 * 2 E|X - Y| - E|X - X'| - E|Y - Y'|, zero only for equal distributions. */
static double energy_distance(const nd_tensor *a, const nd_tensor *b) {
    const float *pa = nd_data(a), *pb = nd_data(b);
    int64_t na = a->shape[0], nb = b->shape[0];
    double xy = 0, xx = 0, yy = 0;
    for (int64_t i = 0; i < na; i++)
        for (int64_t j = 0; j < nb; j++)
            xy += hypot(pa[2 * i] - pb[2 * j], pa[2 * i + 1] - pb[2 * j + 1]);
    for (int64_t i = 0; i < na; i++)
        for (int64_t j = 0; j < na; j++)
            xx += hypot(pa[2 * i] - pa[2 * j], pa[2 * i + 1] - pa[2 * j + 1]);
    for (int64_t i = 0; i < nb; i++)
        for (int64_t j = 0; j < nb; j++)
            yy += hypot(pb[2 * i] - pb[2 * j], pb[2 * i + 1] - pb[2 * j + 1]);
    return 2 * xy / ((double)na * nb) - xx / ((double)na * na) - yy / ((double)nb * nb);
}

/* The share of a's points that have a point of b within r: of the
 * samples near the data, "precision", or of the data near a sample,
 * "recall" (Kynkaanniemi et al. 2019, with a fixed radius). */
static double share_near(const nd_tensor *a, const nd_tensor *b, double r) {
    const float *pa = nd_data(a), *pb = nd_data(b);
    int64_t na = a->shape[0], nb = b->shape[0], near = 0;
    for (int64_t i = 0; i < na; i++)
        for (int64_t j = 0; j < nb; j++)
            if (hypot(pa[2 * i] - pb[2 * j], pa[2 * i + 1] - pb[2 * j + 1]) < r) {
                near++;
                break;
            }
    return (double)near / (double)na;
}

/* A few hundred steps lower L_simple and move the samples onto the
 * moons: their energy distance to held-out points falls below 0.01
 * (measured 0.005; the untrained model, whose eps = 0 lets x_0 run off,
 * about 200), and 60% of them lie within 0.1 (twice the data's noise) of
 * a held-out point (measured 74%; untrained 0), while they cover the
 * data. A well-trained model (3,000 steps of the default MLP) reaches
 * 0.001 and 93%. */
START_TEST(mlp_learns_two_moons) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 100, 1e-3, 0.2, &err), ND_OK);
    nd_mlp_config mc = nd_mlp_defaults(2);
    mc.width = 64;
    mc.depth = 2;
    mc.emb = 32;
    nd_rng g = nd_rng_init(1, 0);
    nd_mlp *m = nd_mlp_new(&mc, &g);
    nd_train_config cfg = nd_train_defaults();
    cfg.optim.lr = 3e-3;
    cfg.optim.warmup_steps = 20;
    cfg.ema_decay = 0.99;
    nd_trainer *tr = nd_trainer_new(&s, nd_mlp_denoiser(m), cfg, 2);
    nd_rng data = nd_rng_init(3, 0);
    nd_tensor *held_out = nd_toy_two_moons(400, 0.05f, &data);
    nd_sample_config sc = nd_sample_defaults();
    sc.clip = false;
    sc.seed = 4;
    nd_tensor *before = nd_p_sample_loop(&s, nd_mlp_denoiser(m), ND_SHAPE(400, 2), &sc);
    double ed_before = energy_distance(before, held_out);
    double first = 0, last = 0;
    const int steps = 1000, window = 50;
    /* one core, as the model is meant to train (and, for ops this small,
     * faster than two) */
    int saved = nd_get_num_threads();
    nd_set_num_threads(1);
    for (int k = 0; k < steps; k++) {
        nd_scope *sc_step = nd_scope_begin();
        double l = nd_train_step(tr, nd_toy_two_moons(256, 0.05f, &data)).loss;
        nd_scope_end(sc_step);
        if (k < window) first += l / window;
        if (k >= steps - window) last += l / window;
    }
    sc.ema = tr->ema;
    nd_set_num_threads(saved);
    nd_tensor *after = nd_p_sample_loop(&s, nd_mlp_denoiser(m), ND_SHAPE(400, 2), &sc);
    double ed_after = energy_distance(after, held_out);
    double prec_before = share_near(before, held_out, 0.1);
    double prec = share_near(after, held_out, 0.1), recall = share_near(held_out, after, 0.1);
    ck_assert_msg(last < 0.7 * first, "L_simple %g -> %g", first, last);
    ck_assert_msg(ed_before > 0.2 && prec_before < 0.3,
                  "untrained: energy distance %g, precision %g", ed_before, prec_before);
    ck_assert_msg(ed_after < 0.01 && prec > 0.6 && recall > 0.95,
                  "trained: energy distance %g (untrained %g), precision %g (untrained %g), "
                  "recall %g", ed_after, ed_before, prec, prec_before, recall);
    nd_trainer_free(tr);
    nd_module_free(nd_mlp_module(m));
    nd_schedule_free(&s);
}
END_TEST

START_TEST(bad_trainers_are_refused) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 10, 0.01, 0.2, &err), ND_OK);
    probe *p = probe_new(1.0f);
    nd_denoiser d = {probe_forward, p, &p->base, ND_PRED_EPS, NULL, 0};
    nd_train_config cfg = nd_train_defaults();
    EXPECT_FATAL(nd_trainer_new(&s, (nd_denoiser){probe_forward, p, NULL, ND_PRED_EPS, NULL, 0}, cfg, 0),
                 "nanodiff: trainer_new: the denoiser has no module to train");
    cfg.grad_clip = -1;
    EXPECT_FATAL(nd_trainer_new(&s, d, cfg, 0),
                 "nanodiff: trainer_new: grad_clip -1 is not a number >= 0");
    cfg = nd_train_defaults();
    cfg.ema_decay = 2;
    EXPECT_FATAL(nd_trainer_new(&s, d, cfg, 0),
                 "nanodiff: trainer_new: ema_decay 2 is not in [0, 1]");
    cfg = nd_train_defaults();
    cfg.optim.lr = -1;
    EXPECT_FATAL(nd_trainer_new(&s, d, cfg, 0),
                 "nanodiff: optimizer_new: learning rate -1 is not a finite number >= 0");
    cfg = nd_train_defaults();
    nd_trainer *tr = nd_trainer_new(&s, d, cfg, 0);
    EXPECT_FATAL(nd_train_step(tr, nd_zeros(ND_SHAPE(0, 3))),
                 "nanodiff: train_step: x0 needs a batch [N, ...] with N >= 1");
    tr->config.random_flip = true;
    EXPECT_FATAL(nd_train_step(tr, nd_zeros(ND_SHAPE(2, 3))),
                 "nanodiff: train_step: random flips need images [N, C, H, W], got [2,3]");
    ck_assert_int_eq(nd_trainer_load(tr, "/nonexistent/dir/x.safetensors", &err), ND_ERR);
    nd_trainer_free(tr);
    nd_module_free(&p->base);
    nd_schedule_free(&s);
}
END_TEST

TCase *tcase_train(void) {
    TCase *tc = nd_test_case("train");
    tcase_set_timeout(tc, 600); /* two moons takes minutes under qemu */
    tcase_add_test(tc, a_step_draws_and_reports_as_documented);
    tcase_add_test(tc, step_memory_is_released);
    tcase_add_test(tc, same_bits_for_any_thread_count);
    tcase_add_test(tc, resumed_run_equals_an_uninterrupted_one);
    tcase_add_test(tc, mlp_learns_two_moons);
    tcase_add_test(tc, bad_trainers_are_refused);
    tcase_add_test(tc, labels_are_dropped_at_the_configured_rate);
    return tc;
}
