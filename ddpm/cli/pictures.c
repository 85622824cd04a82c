/* Pictures the commands share: samples as a grid or a scatter over the
 * data, the reverse chain as a strip, the loss curve. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_write_grid(const char *path, const nd_tensor *batch, int rows, int cols, nd_error *err) {
    int64_t n = batch->shape[0], c = batch->shape[1], h = batch->shape[2], w = batch->shape[3];
    int64_t f = (64 + h - 1) / h; /* each pixel an f x f block, for cells of 64 and more */
    if (f <= 1) return nd_png_write_grid(path, batch, rows, cols, err);
    nd_scope *scope = nd_scope_begin();
    nd_tensor *src = nd_contiguous(batch), *big = nd_empty(ND_SHAPE(n, c, h * f, w * f));
    const float *p = nd_data(src);
    float *q = nd_data(big);
    for (int64_t plane = 0; plane < n * c; plane++)
        for (int64_t y = 0; y < h * f; y++)
            for (int64_t x = 0; x < w * f; x++)
                q[(plane * h * f + y) * w * f + x] = p[(plane * h + y / f) * w + x / f];
    int rc = nd_png_write_grid(path, big, rows, cols, err);
    nd_scope_end(scope);
    return rc;
}

int cli_write_samples_png(const char *path, const nd_tensor *x, const cli_data *d, uint64_t seed,
                          nd_error *err) {
    if (x->ndim == 4) return cli_write_grid(path, x, 0, 0, err);
    if (x->shape[1] != 2)
        return nd_error_set(err,
                            "%s: points of %lld dimensions have no "
                            "picture (only 2-D ones do)",
                            path, (long long)x->shape[1]);
    /* Over 2,000 points of the data, in a frame that holds both. */
    nd_scope *scope = nd_scope_begin();
    nd_tensor *under =
        d ? (d->generated ? cli_data_batch(d, seed, -1, 2000, NULL) : d->table) : NULL;
    /* The frame: the data's extent and a quarter more, to the next half;
     * samples that stray further are left out of the picture. */
    const nd_tensor *frame_of = under ? under : x;
    const float *p = nd_data(frame_of);
    double extent = 0.5;
    for (int64_t i = 0; i < nd_numel(frame_of); i++) {
        double a = fabs((double)p[i]);
        if (a > extent && a < 1e6) extent = a;
    }
    extent = 0.5 * ceil(2.5 * extent);
    int rc = nd_png_scatter(path, under, x, 480, -extent, extent, err);
    nd_scope_end(scope);
    return rc;
}

/* ---- the reverse chain ---------------------------------------------------- */

void cli_chain_see(void *ctx, int64_t i, const nd_tensor *x_t, const nd_tensor *x0_pred) {
    cli_chain *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->xt = realloc(c->xt, sizeof *c->xt * (size_t)c->cap);
        c->x0 = realloc(c->x0, sizeof *c->x0 * (size_t)c->cap);
        c->t = realloc(c->t, sizeof *c->t * (size_t)c->cap);
        if (!c->xt || !c->x0 || !c->t) nd_fatal("chain", "out of memory for the chain");
    }
    int64_t rows = x_t->ndim == 4 ? c->rows : x_t->shape[0]; /* points: all of them */
    c->xt[c->n] = nd_persist(nd_clone(nd_slice(x_t, 0, 0, rows, 1)));
    c->x0[c->n] = nd_persist(nd_clone(nd_slice(x0_pred, 0, 0, rows, 1)));
    c->t[c->n++] = i + 1;
}

void cli_chain_free(cli_chain *c) {
    for (int k = 0; k < c->n; k++) {
        nd_free(c->xt[k]);
        nd_free(c->x0[k]);
    }
    free(c->xt);
    free(c->x0);
    free(c->t);
}

/* Images: for each of the first rows examples, a row of x_t from x_T to
 * x_0 and under it the x_0 predicted at each of those steps. */
int cli_chain_strip(const char *path, const cli_chain *c, const nd_tensor *final, nd_error *err) {
    nd_scope *scope = nd_scope_begin();
    int cols = c->n + 1, rows = c->rows;
    const nd_tensor **cells = malloc(sizeof *cells * (size_t)(2 * rows * cols));
    if (!cells) nd_fatal("chain", "out of memory for the chain");
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < cols; k++) {
            const nd_tensor *a = k < c->n ? c->xt[k] : final, *b = k < c->n ? c->x0[k] : final;
            cells[(2 * r) * cols + k] = nd_slice(a, 0, r, r + 1, 1);
            cells[(2 * r + 1) * cols + k] = nd_slice(b, 0, r, r + 1, 1);
        }
    int rc = cli_write_grid(path, nd_concat(cells, 2 * rows * cols, 0), 2 * rows, cols, err);
    free(cells);
    nd_scope_end(scope);
    return rc;
}

/* ---- the loss ------------------------------------------------------------ */

void cli_loss_free(cli_loss_log *l) {
    free(l->step);
    free(l->loss);
    memset(l, 0, sizeof *l);
}

void cli_loss_push(cli_loss_log *l, double step, double loss) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->step = realloc(l->step, sizeof(double) * (size_t)l->cap);
        l->loss = realloc(l->loss, sizeof(double) * (size_t)l->cap);
        if (!l->step || !l->loss) nd_fatal("train", "out of memory for the loss log");
    }
    l->step[l->n] = step;
    l->loss[l->n++] = loss;
}

/* The loss per step and its trailing mean over a window of about 1/50 of
 * the run (at least 10 steps), on a log scale. */
int cli_loss_png(const char *path, const cli_loss_log *l, nd_error *err) {
    if (l->n < 2) return ND_OK;
    int64_t w = l->n / 50 < 10 ? 10 : l->n / 50;
    double *avg = malloc(sizeof(double) * (size_t)l->n);
    if (!avg) return nd_error_set(err, "out of memory for the loss plot");
    double sum = 0;
    for (int64_t i = 0; i < l->n; i++) {
        sum += l->loss[i];
        if (i >= w) sum -= l->loss[i - w];
        avg[i] = i + 1 >= w ? sum / (double)w : NAN;
    }
    char label[64];
    snprintf(label, sizeof label, "mean of %lld steps", (long long)w);
    nd_plot_series series[2] = {
        {.x = l->step, .y = l->loss, .n = l->n, .color = {150, 170, 220}, .label = "loss"},
        {.x = l->step, .y = avg, .n = l->n, .color = {200, 30, 30}, .label = label}};
    nd_plot plot = {.title = "training loss",
                    .xlabel = "step",
                    .ylabel = "loss",
                    .logy = true,
                    .width = 720,
                    .height = 440};
    int rc = nd_png_plot(path, &plot, series, 2, err);
    free(avg);
    return rc;
}
