/* The fuzz targets' shared harness (fuzz.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define SLOTS 8

_Noreturn void fz_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz: %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    abort();
}

/* nd_fatal from a reader of outside data is a bug: abort, so that
 * libFuzzer keeps the input, rather than exit as the default hook does. */
static void fatal_hook(const char *message) {
    fprintf(stderr, "fuzz: nd_fatal reached (a reader must return ND_ERR instead): %s\n",
            message);
    fflush(stderr);
    abort();
}

static char dir[256];
static char paths[SLOTS][300];
static int fds[SLOTS];

static void remove_dir(void) {
    for (int k = 0; k < SLOTS; k++) {
        if (fds[k] >= 0) close(fds[k]);
        fds[k] = -1;
        unlink(paths[k]);
    }
    rmdir(dir);
}

static bool writable_dir(const char *d) {
    struct stat st;
    return d && *d && stat(d, &st) == 0 && S_ISDIR(st.st_mode) && access(d, W_OK | X_OK) == 0;
}

void fz_init(void) {
    static bool done;
    if (done) return;
    done = true;
    nd_set_error_hook(fatal_hook);
    const char *base = getenv("ND_FUZZ_TMPDIR");
    if (!writable_dir(base)) base = "/dev/shm"; /* tmpfs: the writers' fsyncs cost nothing */
    if (!writable_dir(base)) base = getenv("TMPDIR");
    if (!writable_dir(base)) base = "/tmp";
    snprintf(dir, sizeof dir, "%s/nanodiff-fuzz-XXXXXX", base);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "fuzz: cannot make a directory in %s: %s\n", base, strerror(errno));
        exit(1);
    }
    for (int k = 0; k < SLOTS; k++) {
        snprintf(paths[k], sizeof paths[k], "%s/file%d", dir, k);
        fds[k] = -1;
    }
    atexit(remove_dir);
}

const char *fz_path(int slot) {
    FZ_CHECK(slot >= 0 && slot < SLOTS && dir[0], "fz_path: bad slot %d or no fz_init", slot);
    return paths[slot];
}

const char *fz_write(int slot, const void *data, size_t n) {
    const char *path = fz_path(slot);
    if (fds[slot] < 0) {
        fds[slot] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        FZ_CHECK(fds[slot] >= 0, "cannot open %s: %s", path, strerror(errno));
    }
    int fd = fds[slot];
    FZ_CHECK(ftruncate(fd, (off_t)n) == 0, "ftruncate %s: %s", path, strerror(errno));
    const unsigned char *p = data;
    size_t done = 0;
    while (done < n) {
        ssize_t k = pwrite(fd, p + done, n - done, (off_t)done);
        if (k < 0 && errno == EINTR) continue;
        FZ_CHECK(k > 0, "pwrite %s: %s", path, strerror(errno));
        done += (size_t)k;
    }
    return path;
}

void fz_remove(int slot) {
    const char *path = fz_path(slot);
    if (fds[slot] >= 0) close(fds[slot]);
    fds[slot] = -1;
    unlink(path);
}

void fz_check_result(const char *what, int rc, const nd_error *err, const char *path) {
    FZ_CHECK(rc == ND_OK || rc == ND_ERR, "%s returned %d, neither ND_OK nor ND_ERR", what, rc);
    if (rc == ND_OK) return;
    const char *m = err->message;
    size_t len = strnlen(m, sizeof err->message);
    FZ_CHECK(len < sizeof err->message, "%s: the error message is not terminated", what);
    FZ_CHECK(len > 0, "%s returned ND_ERR with an empty message", what);
    if (path)
        FZ_CHECK(strstr(m, path) != NULL, "%s: the message does not name the file %s: %s",
                 what, path, m);
}

size_t fz_mem_begin(void) { return nd_mem_live(); }

void fz_mem_end(size_t base, const char *what) {
    size_t now = nd_mem_live();
    FZ_CHECK(now == base, "%s: nd_mem_live() is %zu bytes after the input, %zu before: a leak",
             what, now, base);
}

uint64_t fz_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = v << 8 | p[k];
    return v;
}

uint32_t fz_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void fz_put_le64(unsigned char *p, uint64_t v) {
    for (int k = 0; k < 8; k++) p[k] = (unsigned char)(v >> (8 * k));
}

void fz_put_le32(unsigned char *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (8 * k));
}

/* ---- the checkpoint target's model ------------------------------------- */

static void step(fz_model *m, nd_linear_layer *a, nd_linear_layer *b) {
    nd_scope *s = nd_scope_begin();
    nd_tensor *x = nd_randn(&m->rng, ND_SHAPE(4, 2));
    nd_tensor *y = nd_linear_forward(b, nd_silu(nd_linear_forward(a, x)));
    nd_tensor *loss = nd_mean(nd_square(nd_sub(y, nd_full(ND_SHAPE(4, 1), 0.25f))), NULL, 0,
                              false);
    nd_backward(loss);
    nd_optimizer_step(m->adamw);
    nd_optimizer_step(m->sgd);
    nd_optimizer_zero_grad(m->adamw);
    nd_ema_update(m->ema);
    nd_scope_end(s);
}

void fz_model_new(fz_model *m) {
    memset(m, 0, sizeof *m);
    nd_rng init = nd_rng_init(1234, 0);
    m->model = nd_sequential_new();
    nd_linear_layer *a = nd_linear_new(2, 3, true, &init);
    nd_linear_layer *b = nd_linear_new(3, 1, false, &init);
    nd_sequential_add(m->model, &a->base);
    nd_sequential_add(m->model, &b->base);
    m->adamw = nd_optimizer_new(m->model, nd_optim_defaults(ND_ADAMW));
    nd_optim_config sgd = nd_optim_defaults(ND_SGD);
    sgd.momentum = 0.9;
    m->sgd = nd_optimizer_new(m->model, sgd);
    m->ema = nd_ema_new(m->model, FZ_EMA_DECAY);
    m->rng = nd_rng_init(99, 7);
    step(m, a, b);
    step(m, a, b);
}

void fz_model_free(fz_model *m) {
    nd_ema_free(m->ema);
    nd_optimizer_free(m->sgd);
    nd_optimizer_free(m->adamw);
    nd_module_free(m->model);
    memset(m, 0, sizeof *m);
}
