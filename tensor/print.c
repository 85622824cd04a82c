/* Printing in PyTorch's style: one number format for the whole tensor,
 * right-aligned columns, nested brackets, and "..." for the middle of
 * long axes once the tensor has more than 1000 elements. */
#include <math.h>
#include <string.h>

#include "internal.h"

#define SUMMARY_THRESHOLD 1000
#define EDGE_ITEMS 3
#define LINE_WIDTH 80

typedef struct {
    FILE *f;
    const nd_tensor *t;
    bool summarize;
    int mode; /* 0: integers "3.", 1: fixed "%.4f", 2: scientific "%.4e" */
    int width;
} printer;

static int format_value(const printer *p, float v, char *buf, size_t n) {
    if (isnan(v)) return snprintf(buf, n, "nan");
    if (isinf(v)) return snprintf(buf, n, v > 0 ? "inf" : "-inf");
    if (p->mode == 0) return snprintf(buf, n, "%.0f.", (double)v);
    if (p->mode == 1) return snprintf(buf, n, "%.4f", (double)v);
    return snprintf(buf, n, "%.4e", (double)v);
}

/* Visits the elements that will be printed (all, or the edges). */
static void visit(const printer *p, int axis, int64_t off,
                  void (*fn)(void *, float), void *ctx) {
    const nd_tensor *t = p->t;
    if (axis == t->ndim) {
        fn(ctx, t->storage->data[off]);
        return;
    }
    int64_t n = t->shape[axis];
    for (int64_t i = 0; i < n; i++) {
        if (p->summarize && n > 2 * EDGE_ITEMS && i == EDGE_ITEMS) i = n - EDGE_ITEMS;
        visit(p, axis + 1, off + i * t->strides[axis], fn, ctx);
    }
}

typedef struct {
    bool all_int;
    double max_abs, min_abs; /* over finite nonzero values */
    int nfinite;
} stats;

static void gather(void *ctx, float v) {
    stats *s = ctx;
    if (!isfinite(v)) return;
    s->nfinite++;
    if (v != ceilf(v)) s->all_int = false;
    double a = fabs((double)v);
    if (a > 0) {
        if (a > s->max_abs) s->max_abs = a;
        if (a < s->min_abs) s->min_abs = a;
    }
}

static void measure(void *ctx, float v) {
    printer *p = ctx;
    char buf[64];
    int w = format_value(p, v, buf, sizeof buf);
    if (w > p->width) p->width = w;
}

static void choose_format(printer *p) {
    stats s = {true, 0.0, INFINITY, 0};
    visit(p, 0, p->t->offset, gather, &s);
    if (s.all_int) p->mode = s.max_abs > 1e8 ? 2 : 0;
    else if (s.max_abs > 0 && (s.max_abs / s.min_abs > 1000 || s.max_abs > 1e8 ||
                               s.min_abs < 1e-4))
        p->mode = 2;
    else p->mode = 1;
    p->width = 1;
    visit(p, 0, p->t->offset, measure, p);
}

static void put_value(const printer *p, float v) {
    char buf[64];
    format_value(p, v, buf, sizeof buf);
    fprintf(p->f, "%*s", p->width, buf);
}

static void print_axis(const printer *p, int axis, int64_t off, int indent) {
    const nd_tensor *t = p->t;
    int64_t n = t->shape[axis];
    bool last = axis == t->ndim - 1;
    int per_line = (LINE_WIDTH - indent) / (p->width + 2);
    if (per_line < 1) per_line = 1;
    fputc('[', p->f);
    int on_line = 0;
    for (int64_t i = 0; i < n; i++) {
        bool skip = p->summarize && n > 2 * EDGE_ITEMS && i == EDGE_ITEMS;
        if (i > 0) {
            if (last) {
                fputc(',', p->f);
                if (++on_line >= per_line) {
                    fprintf(p->f, "\n%*s", indent + 1, "");
                    on_line = 0;
                } else {
                    fputc(' ', p->f);
                }
            } else {
                fputc(',', p->f);
                for (int k = axis; k < t->ndim - 1; k++) fputc('\n', p->f);
                fprintf(p->f, "%*s", indent + 1, "");
            }
        }
        if (skip) {
            fputs("...", p->f);
            i = n - EDGE_ITEMS - 1;
            continue;
        }
        if (last) put_value(p, t->storage->data[off + i * t->strides[axis]]);
        else print_axis(p, axis + 1, off + i * t->strides[axis], indent + 1);
    }
    fputc(']', p->f);
}

void nd_fprint(FILE *f, const nd_tensor *t) {
    nd__check_values(t, "print");
    if (!f) nd_fatal("print", "stream is NULL");
    printer p = {f, t, nd_numel(t) > SUMMARY_THRESHOLD, 1, 1};
    char s[ND_SHAPE_STR_LEN];
    fputs("tensor(", f);
    if (nd_numel(t) == 0) {
        fputs("[]", f);
    } else {
        choose_format(&p);
        if (t->ndim == 0) put_value(&p, t->storage->data[t->offset]);
        else print_axis(&p, 0, t->offset, (int)strlen("tensor("));
    }
    fprintf(f, ", shape=%s", nd_shape_str(t->shape, t->ndim, s));
    if (!nd_is_contiguous(t))
        fprintf(f, ", strides=%s", nd_shape_str(t->strides, t->ndim, s));
    fputs(")\n", f);
}

void nd_print(const nd_tensor *t) { nd_fprint(stdout, t); }
