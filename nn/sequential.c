/* Containers and wrappers of one-input modules: Sequential runs its
 * children in order, y = f_k(... f_1(f_0(x))); an activation module
 * carries a unary op (nd_silu, nd_relu, ...) so that it can sit in one. */
#include "nn.h"

static void destroy_sequential(nd_module *m) { nd_dealloc(m, sizeof *m); }

static nd_tensor *sequential_forward(nd_module *m, const nd_tensor *x) {
    if (m->n == 0) nd_fatal("sequential", "the Sequential is empty");
    const nd_tensor *h = x;
    for (int i = 0; i < m->n; i++) h = nd_module_forward(m->entries[i].child, h);
    return (nd_tensor *)h;
}

nd_module *nd_sequential_new(void) {
    nd_module *m = nd_alloc(sizeof *m);
    nd_module_init(m, "Sequential", destroy_sequential);
    m->forward = sequential_forward;
    return m;
}

nd_module *nd_sequential_add(nd_module *seq, nd_module *child) {
    if (!seq || seq->forward != sequential_forward)
        nd_fatal("sequential_add", "the container is not a Sequential");
    if (!child) nd_fatal("sequential_add", "module is NULL");
    if (!child->forward)
        nd_fatal("sequential_add", "a %s has no one-input forward and cannot be a step of a "
                 "Sequential", child->type);
    return nd_module_child_at(seq, seq->n, child);
}

typedef struct {
    nd_module base;
    nd_tensor *(*fn)(const nd_tensor *x);
} activation;

static void destroy_activation(nd_module *m) { nd_dealloc(m, sizeof(activation)); }

static nd_tensor *activation_forward(nd_module *m, const nd_tensor *x) {
    return ((activation *)m)->fn(x);
}

nd_module *nd_activation_new(const char *type, nd_tensor *(*fn)(const nd_tensor *x)) {
    if (!type || !fn) nd_fatal("activation_new", "type or function is NULL");
    activation *a = nd_alloc(sizeof *a);
    nd_module_init(&a->base, type, destroy_activation);
    a->base.forward = activation_forward;
    a->fn = fn;
    return &a->base;
}
