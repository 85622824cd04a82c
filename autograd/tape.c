/* The tape: recording ops as they run, and walking them back.
 *
 *   forward:  y = op(x1, x2, ...)        -> append record {op, x1, x2, ..., y}
 *   backward: for each record, newest first, whose output has a gradient:
 *             x_k.grad += rule_op(record, y.grad)   (chain rule, one op)
 */
#include <string.h>

#include "internal.h"

nd_rule nd__rules[ND_OP_COUNT];

static nd_record *tape_head, *tape_tail; /* oldest, newest */
static uint64_t next_id = 1;
static size_t tape_records;
static int no_grad_depth;
static bool in_backward;
static bool installed;

/* ---- modes ------------------------------------------------------------- */

bool nd_is_grad_enabled(void) { return no_grad_depth == 0 && !in_backward; }
void nd_no_grad_begin(void) { no_grad_depth++; }
void nd_no_grad_end(void) {
    if (no_grad_depth == 0) nd_fatal("no_grad_end", "no matching nd_no_grad_begin");
    no_grad_depth--;
}

/* ---- records ----------------------------------------------------------- */

static void record_free(nd_record *r) {
    if (r->prev) r->prev->next = r->next;
    else tape_head = r->next;
    if (r->next) r->next->prev = r->prev;
    else tape_tail = r->prev;
    tape_records--;
    r->out->keep_values = false;
    for (int k = 0; k < r->ev.nin + r->nsaved; k++) {
        if (k < 64 && (r->shape_only >> k & 1)) nd_release_shape(r->ins[k]);
        else nd_release(r->ins[k]);
    }
    nd_dealloc(r, r->bytes);
}

/* Destroying a tensor releases its gradient and its record. */
static void release(nd_tensor *t) {
    if (t->grad) {
        nd_tensor *g = t->grad;
        t->grad = NULL;
        nd_free(g);
    }
    if (t->record) {
        nd_record *r = t->record;
        t->record = NULL;
        record_free(r);
    }
}

const char *nd__record_name(const nd_record *r) {
    return r->fn ? r->fn->name : nd_op_name(r->ev.op);
}

static bool any_requires_grad(const nd_tensor *const *in, int n) {
    for (int k = 0; k < n; k++)
        if (in[k]->requires_grad) return true;
    return false;
}

/* A record holding e's inputs and then `saved`, and args_bytes of args
 * after them, appended to the tape as the record of e->out. Inputs in the
 * shape_only mask are held for their shape and gradient alone; out's
 * values are kept as long as the record if keep_output. */
static nd_record *append(const nd_op_event *e, const nd_tensor *const *saved,
                         int nsaved, const void *args, size_t args_bytes,
                         uint64_t shape_only, bool keep_output) {
    size_t ins_bytes = (size_t)(e->nin + nsaved) * sizeof(nd_tensor *);
    size_t bytes = sizeof(nd_record) + ins_bytes + args_bytes;
    nd_record *r = nd_alloc(bytes);
    memset(r, 0, sizeof *r);
    r->ev = *e;
    r->ins = (nd_tensor **)(r + 1);
    if (e->nin < 64) shape_only &= (UINT64_C(1) << e->nin) - 1; /* saved: values */
    r->shape_only = shape_only;
    for (int k = 0; k < e->nin; k++) {
        nd_tensor *x = (nd_tensor *)e->in[k];
        r->ins[k] = k < 64 && (shape_only >> k & 1) ? nd_retain_shape(x) : nd_retain(x);
    }
    for (int k = 0; k < nsaved; k++)
        r->ins[e->nin + k] = nd_retain((nd_tensor *)saved[k]);
    r->nsaved = nsaved;
    if (args_bytes) {
        r->args = (char *)r->ins + ins_bytes;
        memcpy(r->args, args, args_bytes);
    }
    r->ev.in = (const nd_tensor *const *)r->ins;
    r->out = e->out;
    if (tape_records == 0) next_id = 1; /* a new tape counts from #1 */
    r->id = next_id++;
    r->bytes = bytes;
    r->next = NULL;
    r->prev = tape_tail;
    if (tape_tail) tape_tail->next = r;
    else tape_head = r;
    tape_tail = r;
    tape_records++;
    e->out->record = r;
    e->out->requires_grad = true;
    e->out->keep_values = keep_output;
    return r;
}

/* Made by a function that can compute it again. */
static bool recomputable(const nd_tensor *x) {
    return x->record && x->record->fn && x->record->fn->recompute;
}

static void observe(const nd_op_event *e) {
    if (!nd_is_grad_enabled() || !any_requires_grad(e->in, e->nin)) return;
    const nd_rule *rule = &nd__rules[e->op];
    if (rule->not_differentiable) return;
    if (!rule->backward)
        nd_fatal(nd_op_name(e->op), "has no backward rule, so it cannot run on "
                 "tensors that require grad (detach them, or use no-grad mode)");
    uint64_t restore = 0; /* inputs the rule reads that need not be kept */
    for (int k = 0; k < e->nin && k < 64; k++)
        if (!(rule->values_unread >> k & 1) && recomputable(e->in[k]))
            restore |= UINT64_C(1) << k;
    nd_record *r = append(e, NULL, 0, NULL, 0, rule->values_unread | restore, rule->reads_output);
    r->restore = restore;
}

/* The rules against tensor/ops.h: an op listed with a rule has one, the
 * others none, so that adding an op to the list and forgetting its rule
 * stops the first program that records anything, not the first that
 * differentiates that op. */
void nd__rules_check(void) {
    for (int op = 0; op < ND_OP_COUNT; op++) {
        nd_op_grad kind = nd_op_grad_kind((nd_op)op);
        nd__rules[op].not_differentiable = kind == ND_GRAD_NONE;
        if ((kind == ND_GRAD_RULE) != (nd__rules[op].backward != NULL))
            nd_fatal("autograd", "op %s is listed %s a backward rule in tensor/ops.h but %s "
                     "registered in autograd/rules_*.c", nd_op_name((nd_op)op),
                     kind == ND_GRAD_RULE ? "with" : "without",
                     kind == ND_GRAD_RULE ? "none is" : "one is");
    }
}

static void install(void) {
    if (installed) return;
    nd__rules_elementwise(nd__rules);
    nd__rules_reduce(nd__rules);
    nd__rules_shape(nd__rules);
    nd__rules_conv(nd__rules);
    nd__rules_check();
    nd_set_op_observer(observe);
    nd_set_release_hook(release);
    installed = true;
}

/* ---- functions --------------------------------------------------------- */

static void install(void);

nd_tensor *nd_function_apply(const nd_function *fn, nd_tensor *out,
                             const nd_tensor *const *in, int nin,
                             const nd_tensor *const *saved, int nsaved,
                             const void *args, size_t args_bytes) {
    const char *op = fn && fn->name ? fn->name : "function_apply";
    if (!fn || !fn->backward) nd_fatal(op, "function or its backward is NULL");
    if (!out) nd_fatal(op, "output is NULL");
    if (nin < 1 || nsaved < 0 || (nin && !in) || (nsaved && !saved) ||
        nin > 64 || nsaved > 64)
        nd_fatal(op, "bad input list (nin %d, nsaved %d)", nin, nsaved);
    for (int k = 0; k < nin; k++)
        if (!in[k]) nd_fatal(op, "input %d is NULL", k);
    for (int k = 0; k < nsaved; k++)
        if (!saved[k]) nd_fatal(op, "saved tensor %d is NULL", k);
    if (args_bytes && !args) nd_fatal(op, "args is NULL");
    if (out->record || out->requires_grad)
        nd_fatal(op, "the output must be a new tensor, not one already on the tape "
                 "or a leaf that requires grad");
    if (!nd_is_grad_enabled() || !any_requires_grad(in, nin)) return out;
    install();
    nd_op_event e = {.op = ND_OP_COUNT, .out = out, .in = in, .nin = nin};
    /* inputs only for their shapes, but those recompute reads: those keep
     * their values, unless the tape can form them again too */
    uint64_t shape_only = ND_UNREAD_ALL;
    for (int k = 0; k < nin && k < 64 && fn->recompute && fn->recompute_reads_inputs; k++)
        if (!recomputable(in[k])) shape_only &= ~(UINT64_C(1) << k);
    nd_record *r = append(&e, saved, nsaved, args, args_bytes, shape_only, false);
    r->fn = fn;
    return out;
}

/* Gives t, made by a function with a recompute, its values again if they
 * were released: first those of the function's own inputs, if it can
 * compute them again too. Returns whether t's values were restored. */
static bool restore_values(nd_tensor *t) {
    if (t->storage) return false;
    nd_record *q = t->record;
    bool again[64] = {false};
    for (int k = 0; k < q->ev.nin && k < 64 && q->fn->recompute_reads_inputs; k++)
        if (recomputable(q->ins[k])) again[k] = restore_values(q->ins[k]);
    nd_function_ctx ctx = {q->ins, q->ev.nin, q->ins + q->ev.nin, q->nsaved, q->out, q->args};
    nd_tensor *fresh = nd_empty(t->shape, t->ndim);
    q->fn->recompute(&ctx, fresh);
    nd_restore_values(t, fresh);
    nd_free(fresh);
    for (int k = 0; k < q->ev.nin && k < 64; k++)
        if (again[k]) nd_release_unread_values(q->ins[k]);
    return true;
}

static void function_backward(const nd_record *r, const nd_tensor *dy) {
    nd_tensor *grads[64] = {0};
    nd_function_ctx ctx = {r->ins, r->ev.nin, r->ins + r->ev.nin, r->nsaved,
                           r->out, r->args};
    r->fn->backward(&ctx, dy, grads);
    for (int k = 0; k < r->ev.nin; k++) {
        if (!r->ins[k]->requires_grad) continue;
        if (!grads[k])
            nd_fatal(r->fn->name, "backward gave no gradient for input %d, which "
                     "requires grad", k);
        nd__accumulate(r, k, grads[k]);
    }
}

/* ---- leaves ------------------------------------------------------------ */

nd_tensor *nd_requires_grad(nd_tensor *t, bool on) {
    if (!t) nd_fatal("requires_grad", "tensor is NULL");
    if (t->record) {
        char s[ND_SHAPE_STR_LEN];
        nd_fatal("requires_grad", "tensor of shape %s was computed by %s; only leaves "
                 "(tensors no recorded op produced) can be marked",
                 nd_shape_str(t->shape, t->ndim, s), nd__record_name(t->record));
    }
    install();
    t->requires_grad = on;
    t->graph_freed = false; /* a leaf now, by the caller's word */
    return t;
}

void nd_zero_grad(nd_tensor *t) {
    if (!t) nd_fatal("zero_grad", "tensor is NULL");
    if (!t->grad) return;
    if (t->record && !nd_owns_storage(t->grad)) { /* shared with other gradients */
        nd_tensor *z = nd_persist(nd_zeros(t->grad->shape, t->grad->ndim));
        nd_free(t->grad);
        t->grad = z;
        return;
    }
    nd_fill_(t->grad, 0.0f);
}

nd_tensor *nd_detach(const nd_tensor *x) {
    if (!x) nd_fatal("detach", "tensor is NULL");
    no_grad_depth++;
    nd_tensor *y = nd_view(x, x->shape, x->ndim);
    no_grad_depth--;
    return y;
}

/* ---- accumulation ------------------------------------------------------ */

/* The math: an input broadcast in forward gets its gradient summed in
 * backward, over the leading axes broadcasting added and over the size-1
 * axes it stretched, so that dx has x's shape. */
static const nd_tensor *unbroadcast(const nd_record *r, const nd_tensor *x,
                                    const nd_tensor *g) {
    int axes[ND_MAX_DIMS], n = 0, lead = g->ndim - x->ndim;
    for (int i = 0; i < g->ndim; i++)
        if (i < lead || (x->shape[i - lead] == 1 && g->shape[i] != 1)) axes[n++] = i;
    const nd_tensor *gx = n > 0 ? nd_reshape(nd_sum(g, axes, n, true), x->shape, x->ndim) : g;
    if (!nd_same_shape(gx, x)) {
        char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
        nd_fatal(nd__record_name(r), "backward produced a gradient of shape %s for "
                 "an input of shape %s", nd_shape_str(g->shape, g->ndim, a),
                 nd_shape_str(x->shape, x->ndim, b));
    }
    return gx;
}

/* The storage: x.grad += gx, as a copy only where sharing is unsafe.
 *
 * rule_scope is the scope of the rule running now (NULL outside one): a
 * gradient it made and that nothing else holds or views becomes the
 * input's own gradient as it is, where a copy would cost as much as a
 * pass of the op over memory. A persisted tensor has no scope either,
 * hence the test that gx has one.
 *
 * Any other contiguous gradient a rule hands to a non-leaf (dy itself, as
 * add's rule gives it to both inputs, or a reshaped view of it) becomes
 * that input's gradient as a view, sharing the storage: a non-leaf's
 * gradient is read by its own rule and otherwise only inspected, and
 * nothing writes into storage that another tensor views. A second
 * gradient for a non-leaf whose gradient does not own its storage is
 * therefore added out of place. Leaves' gradients, which optimizers
 * update and later backward passes add into, are always their own, as is
 * the seed's copy of the caller's dy. Strided views are still copied: a
 * rule that reads a strided gradient element by element can lose more
 * than the copy costs, and sharing them gained little (docs/PERFORMANCE.md,
 * "The autograd tape"). */
static nd_scope *rule_scope;

static void add_to_grad(nd_tensor *x, const nd_tensor *gx) {
    bool leaf = !x->record;
    if (x->grad && (leaf || nd_owns_storage(x->grad))) {
        nd_add_(x->grad, gx);
    } else if (x->grad) { /* a shared non-leaf gradient: out of place */
        nd_tensor *sum = nd_persist(nd_add(x->grad, gx));
        nd_free(x->grad);
        x->grad = sum;
    } else if (gx->scope && gx->scope == rule_scope && gx->refs == 1 && !gx->grad &&
               !gx->record && nd_owns_storage(gx)) {
        x->grad = nd_persist((nd_tensor *)gx); /* made by the rule, held by none */
    } else if (!leaf && rule_scope && nd_is_contiguous(gx)) {
        x->grad = nd_persist(nd_detach(gx)); /* a view of a gradient's storage */
    } else {
        x->grad = nd_persist(nd_clone(gx));
    }
}

/* dx += unbroadcast(g) */
void nd__accumulate(const nd_record *r, int k, const nd_tensor *g) {
    nd_tensor *x = r->ins[k];
    if (!x->requires_grad) return;
    add_to_grad(x, unbroadcast(r, x, g));
}

nd_tensor *nd__unreduce(const nd_record *r, const nd_tensor *dy) {
    const nd_tensor *x = r->ins[0];
    int64_t kept[ND_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) kept[i] = r->ev.args[i] ? 1 : x->shape[i];
    nd_tensor *k = nd_reshape(dy, kept, x->ndim);
    return nd_expand(k, x->shape, x->ndim);
}

/* ---- the reverse walk -------------------------------------------------- */

static ND_NORETURN void freed_graph_stop(const nd_tensor *t) {
    char a[ND_SHAPE_STR_LEN];
    nd_fatal("backward", "the tensor of shape %s was on a graph that "
             "nd_backward_free_graph has freed; walk a graph more than once "
             "with nd_backward", nd_shape_str(t->shape, t->ndim, a));
}

/* Stops, before anything has changed, if the walk from y would reach a
 * tensor whose graph an earlier walk freed: its gradient would go nowhere. */
static void check_reachable(const nd_tensor *y) {
    if (y->record) y->record->reached = true;
    for (nd_record *r = y->record; r; r = r->prev) {
        if (!r->reached) continue;
        for (int k = 0; k < r->ev.nin; k++) {
            const nd_tensor *x = r->ins[k];
            if (x->graph_freed && x->requires_grad) {
                for (nd_record *q = r; q; q = q->prev) q->reached = false;
                freed_graph_stop(x);
            }
            if (x->record) x->record->reached = true;
        }
        r->reached = false;
    }
}

static void check_backward(const nd_tensor *y) {
    char a[ND_SHAPE_STR_LEN];
    if (!y) nd_fatal("backward", "tensor is NULL");
    if (!y->requires_grad)
        nd_fatal("backward", "the tensor of shape %s does not require grad: no "
                 "recorded op produced it (no input required grad, or no-grad mode "
                 "was on)", nd_shape_str(y->shape, y->ndim, a));
    if (in_backward) nd_fatal("backward", "already running");
    if (y->graph_freed) freed_graph_stop(y);
    check_reachable(y);
}

static void check_one_element(const nd_tensor *loss) {
    if (nd_numel(loss) != 1) {
        char a[ND_SHAPE_STR_LEN];
        nd_fatal("backward", "the loss has shape %s, not one element; use "
                 "nd_backward_with and a seed gradient",
                 nd_shape_str(loss->shape, loss->ndim, a));
    }
}

/* Once a record's rule has run, nothing reads its output's gradient or the
 * record again, unless the caller wants to look at them after backward or
 * walk the same graph twice. A walk that frees the graph drops both there
 * and then, so that a step's gradients are never all alive at once, and
 * tensors only the tape held (activations a forward has freed) go as soon
 * as the last rule that reads them has run. The tensors it passed keep
 * their values but lose their records; they are marked, so that a later
 * backward which reaches one stops instead of treating it as a leaf.
 *
 * The walk holds every record's output until it reaches that record: a
 * rule's input must not be destroyed (and its record with it) when a newer
 * record that read it is freed. */
static void walk(nd_tensor *y, const nd_tensor *dy, bool free_graph) {
    char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
    if (!dy) nd_fatal("backward", "seed gradient is NULL");
    if (!nd_same_shape(y, dy))
        nd_fatal("backward", "seed gradient of shape %s for a tensor of shape %s",
                 nd_shape_str(dy->shape, dy->ndim, b), nd_shape_str(y->shape, y->ndim, a));
    in_backward = true;
    /* Gradients of non-leaves belong to one backward: start them afresh. */
    for (nd_record *r = y->record; r; r = r->prev) {
        if (r->out->grad) {
            nd_free(r->out->grad);
            r->out->grad = NULL;
        }
        if (free_graph) nd_retain_shape(r->out);
    }
    nd_scope *s = nd_scope_begin();
    nd_record self = {.ins = &y, .ev = {.nin = 1}};
    nd__accumulate(&self, 0, dy);
    nd_scope_end(s);
    for (nd_record *r = y->record, *prev; r; r = prev) {
        prev = r->prev;
        nd_tensor *out = r->out;
        if (out->grad) {
            s = rule_scope = nd_scope_begin(); /* the rule's temporaries */
            bool restored[64] = {false};
            for (int k = 0; k < r->ev.nin && k < 64; k++)
                if (r->restore >> k & 1) restored[k] = restore_values(r->ins[k]);
            if (r->fn) function_backward(r, out->grad);
            else nd__rules[r->ev.op].backward(r, out->grad);
            for (int k = 0; k < r->ev.nin && k < 64; k++)
                if (restored[k]) nd_release_unread_values(r->ins[k]);
            rule_scope = NULL;
            nd_scope_end(s);
            if (free_graph) {
                nd_free(out->grad);
                out->grad = NULL;
                out->record = NULL;
                out->graph_freed = true;
                record_free(r);
            }
        }
        if (free_graph) nd_release_shape(out);
    }
    in_backward = false;
}

void nd_backward_with(nd_tensor *y, const nd_tensor *dy) {
    check_backward(y);
    walk(y, dy, false);
}

/* d loss = 1 */
static void backward_from_loss(nd_tensor *loss, bool free_graph) {
    check_backward(loss);
    check_one_element(loss);
    nd_scope *s = nd_scope_begin();
    walk(loss, nd_full(loss->shape, loss->ndim, 1.0f), free_graph);
    nd_scope_end(s);
}

void nd_backward(nd_tensor *loss) { backward_from_loss(loss, false); }
void nd_backward_free_graph(nd_tensor *loss) { backward_from_loss(loss, true); }

/* ---- looking at the tape ----------------------------------------------- */

size_t nd_tape_length(void) { return tape_records; }

static void print_tensor_ref(FILE *f, const nd_tensor *t) {
    char s[ND_SHAPE_STR_LEN];
    nd_shape_str(t->shape, t->ndim, s);
    if (t->record) fprintf(f, "#%llu%s", (unsigned long long)t->record->id, s);
    else if (t->requires_grad) fprintf(f, "leaf%s", s);
    else fprintf(f, "const%s", s);
}

void nd_tape_print(FILE *f) {
    if (!f) nd_fatal("tape_print", "stream is NULL");
    fprintf(f, "tape: %zu record%s (backward walks them bottom to top)\n",
            tape_records, tape_records == 1 ? "" : "s");
    for (const nd_record *r = tape_head; r; r = r->next) {
        char s[ND_SHAPE_STR_LEN];
        fprintf(f, "  #%-4llu %-12s ", (unsigned long long)r->id, nd__record_name(r));
        for (int k = 0; k < r->ev.nin; k++) {
            if (k) fputs(", ", f);
            print_tensor_ref(f, r->ins[k]);
        }
        fprintf(f, " -> %s%s\n", nd_shape_str(r->out->shape, r->out->ndim, s),
                r->out->grad ? "  (has grad)" : "");
    }
}
