/* Shared by the tensor tests: a fixture that checks every test releases
 * all it allocated, a way to catch the library's fatal errors, and small
 * independent helpers (index arithmetic, random inputs). */
#ifndef NANODIFF_TEST_HELPERS_H
#define NANODIFF_TEST_HELPERS_H

#include <check.h>
#include <math.h>
#include <setjmp.h>

#include "tensor/kernels.h"
#include "tensor/tensor.h"

/* UNDER_ASAN: built with AddressSanitizer (gcc and clang say it apart). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Opens a scope before each test; after it, ends the scope and asserts
 * that the library holds no memory any more. */
void nd_test_setup(void);
void nd_test_teardown(void);
TCase *nd_test_case(const char *name); /* with the fixture and a timeout */

/* EXPECT_FATAL(stmt, "nanodiff: add: ...") runs stmt and asserts that it
 * stops with exactly that message. */
extern jmp_buf nd_test_jump;
extern char nd_test_message[1024];
void nd_test_catch_begin(void);
void nd_test_catch_end(void);
#define EXPECT_FATAL(stmt, expected)                                           \
    do {                                                                       \
        nd_test_catch_begin();                                                 \
        if (setjmp(nd_test_jump) == 0) {                                       \
            stmt;                                                              \
            nd_test_catch_end();                                               \
            ck_abort_msg("expected the error \"%s\"", (expected));             \
        }                                                                      \
        nd_test_catch_end();                                                   \
        ck_assert_str_eq(nd_test_message, (expected));                         \
    } while (0)

/* Uniform values in [lo, hi) from a fixed seed. */
nd_tensor *t_uniform(uint64_t seed, const int64_t *shape, int ndim, float lo,
                     float hi);
/* Row-major multi-index of flat position i. */
void t_unravel(int64_t i, const int64_t *shape, int ndim, int64_t *index);
/* The element at index, found from storage, offset and strides alone. */
double t_raw(const nd_tensor *t, const int64_t *index);
int64_t t_count(const int64_t *shape, int ndim); /* product of the sizes */
/* ---- random-case tests (test_*_random.c) ---- */

/* splitmix64: the next number of a seed's stream */
uint64_t t_next_u64(uint64_t *s);
/* uniform in [lo, hi] (lo if the range is empty) */
int64_t t_draw(uint64_t *s, int64_t lo, int64_t hi);
static inline int64_t t_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t t_max(int64_t a, int64_t b) { return a > b ? a : b; }

/* Case i of a run is check(base_seed + i) on every kernel set; a test (a
 * process, a timeout) takes per_test of them. The environment variable
 * named soak (ND_CONV_SOAK=n) runs n cases instead of `cases`, and
 * soak_SEED=s starts from s (with n = 1, it replays one case). */
typedef struct t_random {
    const char *name, *soak;
    int64_t cases, per_test;
    uint64_t base_seed;
    void (*check)(uint64_t seed, const nd_kernels *const *sets, int nsets);
    void (*finish)(int test); /* after a test's cases, or NULL */
} t_random;
/* The case running, which check keeps up to date: a sanitizer's report
 * (a bad access ends the process before any assertion could name it)
 * prints it. */
extern char t_running[800];
/* Runs test `test`'s cases, then puts the kernel set and thread count
 * back. */
void t_random_cases(const t_random *r, int test);
/* A TCase of as many loop tests as the cases need. */
TCase *t_random_tcase(const t_random *r, const TTest *test);

/* Folders of test files: the names in dir, sorted and joined by spaces
 * ("a.st b.st"), and dir removed with the files in it. */
char *t_dir_listing(const char *dir, char *out, size_t size);
/* What a printing function writes: t_print_begin gives the stream to
 * pass it, t_print_end the text (in buf, at most size - 1 bytes). */
FILE *t_print_begin(void);
const char *t_print_end(FILE *f, char *buf, size_t size);
/* A new empty folder in the system's temporary folder, named
 * PREFIX-XXXXXX; its path in dir (at least 260 bytes). */
void t_dir_make(char *dir, size_t size, const char *prefix);
/* mkdir(path) in the system's own form (Windows takes no mode). */
int t_mkdir(const char *path);
void t_dir_remove(const char *dir);
/* The kernel sets this CPU can run, the scalar twins first; returns how
 * many (at most 3). */
int t_kernel_sets(const nd_kernels **sets);
/* A float near b: |a - b| <= tol * max(1, |b|). */
#define ck_assert_near(a, b, tol)                                              \
    do {                                                                       \
        double a_ = (a), b_ = (b);                                             \
        ck_assert_msg(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_)),            \
                      "%s = %.9g, expected %.9g", #a, a_, b_);                 \
    } while (0)

#endif
