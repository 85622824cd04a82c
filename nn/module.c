/* Modules: a tree of named parameters and children.
 *
 * A parameter's full name is the path from the root, joined with dots:
 * the child "down" holds the child "1" holds the parameter "weight" ->
 * "down.1.weight", which is also its key in a checkpoint. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

void nd_module_init(nd_module *m, const char *type, void (*destroy)(nd_module *m)) {
    if (!m) nd_fatal("module_init", "module is NULL");
    memset(m, 0, sizeof *m);
    m->type = type ? type : "Module";
    m->training = true;
    m->destroy = destroy;
}

static char *copy_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = nd_alloc(n);
    memcpy(c, s, n);
    return c;
}

static void check_name(const nd_module *m, const char *name, const char *op) {
    if (!m) nd_fatal(op, "module is NULL");
    if (!name || !*name) nd_fatal(op, "empty name in %s", m->type);
    if (strlen(name) >= 64) nd_fatal(op, "name \"%.64s...\" is too long", name);
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '_'))
            nd_fatal(op, "name \"%s\" in %s: use letters, digits and '_' only "
                     "(dots join names)", name, m->type);
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->entries[i].name, name) == 0)
            nd_fatal(op, "%s already has an entry named \"%s\"", m->type, name);
}

static nd_module_entry *add_entry(nd_module *m, const char *name) {
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 8;
        nd_module_entry *e = nd_alloc((size_t)cap * sizeof *e);
        if (m->n) memcpy(e, m->entries, (size_t)m->n * sizeof *e);
        if (m->entries) nd_dealloc(m->entries, (size_t)m->cap * sizeof *e);
        m->entries = e;
        m->cap = cap;
    }
    nd_module_entry *e = &m->entries[m->n++];
    memset(e, 0, sizeof *e);
    e->name = copy_string(name);
    return e;
}

nd_tensor *nd_module_param(nd_module *m, const char *name, nd_tensor *value) {
    check_name(m, name, "module_param");
    if (!value) nd_fatal("module_param", "parameter \"%s\" is NULL", name);
    if (value->record)
        nd_fatal("module_param", "parameter \"%s\" was computed by a recorded op; "
                 "parameters are leaves (detach or clone it in no-grad mode)", name);
    add_entry(m, name)->param = nd_persist(value);
    return nd_requires_grad(value, true);
}

nd_module *nd_module_child(nd_module *m, const char *name, nd_module *child) {
    check_name(m, name, "module_child");
    if (!child) nd_fatal("module_child", "child \"%s\" is NULL", name);
    if (child == m) nd_fatal("module_child", "a module cannot contain itself");
    add_entry(m, name)->child = child;
    if (!child->rng && m->rng) nd_module_set_rng(child, m->rng);
    return child;
}

nd_module *nd_module_child_at(nd_module *m, int index, nd_module *child) {
    if (index < 0) nd_fatal("module_child", "negative index %d", index);
    char name[16];
    snprintf(name, sizeof name, "%d", index);
    return nd_module_child(m, name, child);
}

static void destroy_group(nd_module *m) { nd_dealloc(m, sizeof *m); }

nd_module *nd_module_new(const char *type) {
    nd_module *m = nd_alloc(sizeof *m);
    nd_module_init(m, type, destroy_group);
    return m;
}

void nd_module_free(nd_module *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) {
        nd_module_entry *e = &m->entries[i];
        if (e->param) nd_free(e->param);
        if (e->child) nd_module_free(e->child);
        nd_dealloc(e->name, strlen(e->name) + 1);
    }
    if (m->entries) nd_dealloc(m->entries, (size_t)m->cap * sizeof *m->entries);
    m->entries = NULL;
    m->n = m->cap = 0;
    if (m->destroy) m->destroy(m);
}

void nd_module_train(nd_module *m, bool on) {
    if (!m) nd_fatal("module_train", "module is NULL");
    m->training = on;
    for (int i = 0; i < m->n; i++)
        if (m->entries[i].child) nd_module_train(m->entries[i].child, on);
}

void nd_module_set_rng(nd_module *m, nd_rng *rng) {
    if (!m) nd_fatal("module_set_rng", "module is NULL");
    m->rng = rng;
    for (int i = 0; i < m->n; i++)
        if (m->entries[i].child) nd_module_set_rng(m->entries[i].child, rng);
}

nd_tensor *nd_module_forward(nd_module *m, const nd_tensor *x) {
    if (!m) nd_fatal("module_forward", "module is NULL");
    if (!m->forward)
        nd_fatal("module_forward", "a %s has no one-input forward; call its own "
                 "forward function", m->type);
    return m->forward(m, x);
}

nd_tensor *nd_module_param_get(const nd_module *m, const char *name) {
    if (!m || !name) nd_fatal("module_param_get", "module or name is NULL");
    for (int i = 0; i < m->n; i++)
        if (m->entries[i].param && !strcmp(m->entries[i].name, name)) return m->entries[i].param;
    return NULL;
}

/* ---- walking the tree -------------------------------------------------- */

static void visit(nd_module *m, char *path, size_t len, nd_module_visit_fn fn, void *ctx) {
    fn(ctx, path, m);
    for (int i = 0; i < m->n; i++) {
        const nd_module_entry *e = &m->entries[i];
        if (!e->child) continue;
        size_t n = strlen(e->name), at = len + (len > 0);
        if (at + n + 1 > ND_NAME_MAX)
            nd_fatal("module_apply", "the name %s.%s is longer than %d characters", path,
                     e->name, ND_NAME_MAX - 1);
        if (len) path[len] = '.';
        memcpy(path + at, e->name, n + 1);
        visit(e->child, path, at + n, fn, ctx);
        path[len] = '\0';
    }
}

void nd_module_apply(nd_module *m, nd_module_visit_fn fn, void *ctx) {
    if (!m || !fn) nd_fatal("module_apply", "module or function is NULL");
    char path[ND_NAME_MAX] = "";
    visit(m, path, 0, fn, ctx);
}

typedef void (*visit_fn)(void *ctx, const char *name, nd_tensor *param);

static void walk(const nd_module *m, char *prefix, size_t len, visit_fn fn, void *ctx) {
    for (int i = 0; i < m->n; i++) {
        const nd_module_entry *e = &m->entries[i];
        size_t n = strlen(e->name);
        if (len + n + 2 > ND_NAME_MAX)
            nd_fatal("parameters", "the name %s.%s is longer than %d characters",
                     prefix, e->name, ND_NAME_MAX - 1);
        size_t at = len;
        if (len) prefix[at++] = '.';
        memcpy(prefix + at, e->name, n + 1);
        if (e->param) fn(ctx, prefix, e->param);
        else walk(e->child, prefix, at + n, fn, ctx);
        prefix[len] = '\0';
    }
}

static void walk_all(const nd_module *m, const char *op, visit_fn fn, void *ctx) {
    if (!m) nd_fatal(op, "module is NULL");
    char prefix[ND_NAME_MAX] = "";
    walk(m, prefix, 0, fn, ctx);
}

static void count_one(void *ctx, const char *name, nd_tensor *p) {
    (void)name;
    (void)p;
    ++*(int *)ctx;
}

typedef struct {
    nd_param_list *list;
} collect_ctx;

static void collect_one(void *ctx, const char *name, nd_tensor *p) {
    nd_param_list *l = ((collect_ctx *)ctx)->list;
    nd_named_param *item = &l->items[l->n++];
    snprintf(item->name, sizeof item->name, "%s", name);
    item->value = p;
}

nd_param_list nd_parameters(const nd_module *m) {
    int n = 0;
    walk_all(m, "parameters", count_one, &n);
    nd_param_list list = {0, NULL};
    if (n == 0) return list;
    list.items = nd_alloc((size_t)n * sizeof *list.items);
    collect_ctx ctx = {&list};
    walk_all(m, "parameters", collect_one, &ctx);
    return list;
}

void nd_param_list_free(nd_param_list *list) {
    if (!list) return;
    if (list->items) nd_dealloc(list->items, (size_t)list->n * sizeof *list->items);
    list->items = NULL;
    list->n = 0;
}

typedef struct {
    const char *want;
    nd_tensor *found;
} find_ctx;

static void find_one(void *ctx, const char *name, nd_tensor *p) {
    find_ctx *f = ctx;
    if (!f->found && strcmp(name, f->want) == 0) f->found = p;
}

nd_tensor *nd_module_find(const nd_module *m, const char *name) {
    if (!name) nd_fatal("module_find", "name is NULL");
    find_ctx f = {name, NULL};
    walk_all(m, "module_find", find_one, &f);
    return f.found;
}

static void sum_numel(void *ctx, const char *name, nd_tensor *p) {
    (void)name;
    *(int64_t *)ctx += nd_numel(p);
}

int64_t nd_num_parameters(const nd_module *m) {
    int64_t n = 0;
    walk_all(m, "num_parameters", sum_numel, &n);
    return n;
}

static void zero_one(void *ctx, const char *name, nd_tensor *p) {
    (void)ctx;
    (void)name;
    nd_zero_grad(p);
}

void nd_module_zero_grad(nd_module *m) { walk_all(m, "module_zero_grad", zero_one, NULL); }

/* ---- printing ---------------------------------------------------------- */

static void print_tree(FILE *f, const nd_module *m, const char *name, int depth) {
    fprintf(f, "%*s%s%s%s", 2 * depth, "", name, *name ? ": " : "", m->type);
    fprintf(f, "  (%" PRId64 " parameters)\n", nd_num_parameters(m));
    for (int i = 0; i < m->n; i++) {
        const nd_module_entry *e = &m->entries[i];
        if (e->child) {
            print_tree(f, e->child, e->name, depth + 1);
        } else {
            char s[ND_SHAPE_STR_LEN];
            fprintf(f, "%*s%s %s\n", 2 * depth + 2, "", e->name,
                    nd_shape_str(e->param->shape, e->param->ndim, s));
        }
    }
}

void nd_module_print(FILE *f, const nd_module *m) {
    if (!f) nd_fatal("module_print", "stream is NULL");
    if (!m) nd_fatal("module_print", "module is NULL");
    print_tree(f, m, "", 0);
}
