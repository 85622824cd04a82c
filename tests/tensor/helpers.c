#include "helpers.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _WIN32
#include <direct.h>
#include <fcntl.h>
#include <io.h>
#include <windows.h>
#endif

#include "tensor/internal.h"

#ifdef UNDER_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

static nd_scope *test_scope;

void nd_test_setup(void) {
    ck_assert_uint_eq(nd_mem_live(), 0);
    test_scope = nd_scope_begin();
}

void nd_test_teardown(void) {
    nd_scope_end(test_scope);
    ck_assert_msg(nd_mem_live() == 0, "%zu bytes still held after the test",
                  nd_mem_live());
}

TCase *nd_test_case(const char *name) {
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, nd_test_setup, nd_test_teardown);
    tcase_set_timeout(tc, 120);
    return tc;
}

jmp_buf nd_test_jump;
char nd_test_message[1024];
static nd_error_hook saved_hook;

static void catch_hook(const char *message) {
    snprintf(nd_test_message, sizeof nd_test_message, "%s", message);
    longjmp(nd_test_jump, 1);
}

void nd_test_catch_begin(void) {
    nd_test_message[0] = 0;
    saved_hook = nd_set_error_hook(catch_hook);
}

void nd_test_catch_end(void) { nd_set_error_hook(saved_hook); }

nd_tensor *t_uniform(uint64_t seed, const int64_t *shape, int ndim, float lo,
                     float hi) {
    nd_tensor *t = nd_empty(shape, ndim);
    float *p = nd_data(t);
    for (int64_t i = 0, n = nd_numel(t); i < n; i++)
        p[i] = lo + (hi - lo) * nd_rand_at(seed, 7, (uint64_t)i);
    return t;
}

void t_unravel(int64_t i, const int64_t *shape, int ndim, int64_t *index) {
    for (int d = ndim - 1; d >= 0; d--) {
        index[d] = shape[d] ? i % shape[d] : 0;
        i = shape[d] ? i / shape[d] : 0;
    }
}

double t_raw(const nd_tensor *t, const int64_t *index) {
    int64_t off = t->offset;
    for (int d = 0; d < t->ndim; d++) off += index[d] * t->strides[d];
    return t->storage->data[off];
}

int64_t t_count(const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

int t_kernel_sets(const nd_kernels **sets) {
    int n = 0;
    sets[n++] = &nd__kernels_scalar;
#if defined(__x86_64__) || defined(_M_X64)
    if (nd__cpu_has_avx2_fma()) sets[n++] = &nd__kernels_avx2;
#endif
#if defined(__aarch64__)
    sets[n++] = &nd__kernels_neon;
#endif
    return n;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *t_dir_listing(const char *dir, char *out, size_t size) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && n < 64)
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i) strncat(out, " ", size - strlen(out) - 1);
        strncat(out, names[i], size - strlen(out) - 1);
        free(names[i]);
    }
    return out;
}

FILE *t_print_begin(void) {
#ifdef _WIN32
    /* Microsoft's tmpfile() writes to the root of the drive, which a user
     * may not; this one goes where the system keeps temporaries and is
     * deleted when closed. */
    char tmp[MAX_PATH + 1], name[MAX_PATH + 16];
    DWORD n = GetTempPathA(sizeof tmp, tmp);
    ck_assert_msg(n > 0 && n < sizeof tmp, "no temporary folder");
    FILE *f = NULL;
    for (int attempt = 0; !f && attempt < 100; attempt++) {
        snprintf(name, sizeof name, "%snd-print-XXXXXX", tmp);
        ck_assert_int_eq(_mktemp_s(name, strlen(name) + 1), 0);
        int fd = _open(name, _O_CREAT | _O_EXCL | _O_RDWR | _O_BINARY | _O_TEMPORARY,
                       _S_IREAD | _S_IWRITE);
        if (fd >= 0) f = _fdopen(fd, "w+b");
    }
#else
    FILE *f = tmpfile();
#endif
    ck_assert_ptr_nonnull(f);
    return f;
}

const char *t_print_end(FILE *f, char *buf, size_t size) {
    rewind(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = 0;
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

void t_dir_make(char *dir, size_t size, const char *prefix) {
#ifdef _WIN32
    char tmp[MAX_PATH + 1];
    DWORD n = GetTempPathA(sizeof tmp, tmp);
    ck_assert_msg(n > 0 && n < sizeof tmp, "no temporary folder");
    for (int attempt = 0; attempt < 100; attempt++) {
        ck_assert_int_lt(snprintf(dir, size, "%s%s-XXXXXX", tmp, prefix), (int)size);
        ck_assert_int_eq(_mktemp_s(dir, strlen(dir) + 1), 0);
        if (_mkdir(dir) == 0) return;
    }
    ck_abort_msg("cannot make a folder in %s", tmp);
#else
    const char *tmp = getenv("TMPDIR");
    ck_assert_int_lt(snprintf(dir, size, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix),
                     (int)size);
    ck_assert_ptr_nonnull(mkdtemp(dir));
#endif
}

int t_mkdir(const char *path) {
#ifdef _WIN32
    return _mkdir(path);
#else
    return mkdir(path, 0755);
#endif
}

void t_dir_remove(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    char p[600];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (unlink(p) != 0) rmdir(p);
        }
    closedir(d);
    ck_assert_int_eq(rmdir(dir), 0);
}

uint64_t t_next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

int64_t t_draw(uint64_t *s, int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    return lo + (int64_t)(t_next_u64(s) % (uint64_t)(hi - lo + 1));
}

char t_running[800];

#ifdef UNDER_ASAN
static const char *running_name;
static void name_running_case(void) {
    fprintf(stderr, "%s: stopped in %s\n", running_name, t_running);
}
#endif

static int64_t random_count(const t_random *r) {
    const char *v = getenv(r->soak);
    long long n = v && *v ? strtoll(v, NULL, 10) : 0;
    return n > 0 ? n : r->cases;
}

static uint64_t random_base(const t_random *r) {
    char name[64];
    snprintf(name, sizeof name, "%s_SEED", r->soak);
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : r->base_seed;
}

void t_random_cases(const t_random *r, int test) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    char initial[32];
    snprintf(initial, sizeof initial, "%s", nd_kernels_name());
    int threads = nd_get_num_threads();
#ifdef UNDER_ASAN
    running_name = r->name;
    __sanitizer_set_death_callback(name_running_case);
#endif
    int64_t lo = (int64_t)test * r->per_test, hi = t_min(lo + r->per_test, random_count(r));
    for (int64_t i = lo; i < hi; i++) r->check(random_base(r) + (uint64_t)i, sets, nsets);
    if (r->finish) r->finish(test);
    nd_set_num_threads(threads);
    nd_error err;
    ck_assert_int_eq(nd_set_kernels(initial, &err), ND_OK);
}

TCase *t_random_tcase(const t_random *r, const TTest *test) {
    TCase *tc = nd_test_case(r->name);
    int64_t tests = (random_count(r) + r->per_test - 1) / r->per_test;
    tcase_add_loop_test(tc, test, 0, (int)tests);
    return tc;
}
