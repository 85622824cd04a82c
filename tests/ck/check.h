/* A small Check-compatible test runner, for targets where the Check library
 * (https://libcheck.github.io/check/) is not installed: riscv64 under qemu
 * (Debian has no check:riscv64) and Windows. It implements the subset of
 * Check's API that the suites under tests/ use, written from Check's
 * documentation, with the same output: the summary line
 * "NN%: Checks: N, Failures: F, Errors: E" that CI reads, then one line per
 * test that did not pass, "file:line:F:tcase:test:iteration: message" (E for
 * a crash, an early exit or a timeout, S for a failing fixture).
 *
 * Each test runs in a child process (fork) by default, so a crash is an
 * error and a timeout can be enforced. With CK_FORK=no, and always on
 * Windows, tests run in this process; a failed assertion jumps back to the
 * runner, and an exit test runs in a new instance of the program.
 * Environment: CK_RUN_SUITE, CK_RUN_CASE, CK_FORK, CK_DEFAULT_TIMEOUT,
 * CK_TIMEOUT_MULTIPLIER, and CK_VERBOSITY with CK_ENV.
 * meson's check_runner option chooses between Check and this layer. */
#ifndef NANODIFF_CK_CHECK_H
#define NANODIFF_CK_CHECK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct Suite Suite;
typedef struct TCase TCase;
typedef struct SRunner SRunner;
typedef void (*SFun)(void);
/* A test function; _i is the iteration of a loop test (0 otherwise). */
typedef void (*TFun)(int _i);
typedef struct TTest {
    const char *name;
    TFun fn;
    const char *file;
    int line;
} TTest;

enum print_output { CK_SILENT, CK_MINIMAL, CK_NORMAL, CK_VERBOSE, CK_ENV };

Suite *suite_create(const char *name);
void suite_add_tcase(Suite *s, TCase *tc);
TCase *tcase_create(const char *name);
/* Seconds, times CK_TIMEOUT_MULTIPLIER; 0 for none. Enforced in fork mode. */
void tcase_set_timeout(TCase *tc, double seconds);
/* Run around each test, in the test's process; a failure in them is "S". */
void tcase_add_checked_fixture(TCase *tc, SFun setup, SFun teardown);
SRunner *srunner_create(Suite *s);
void srunner_run_all(SRunner *sr, enum print_output mode);
int srunner_ntests_failed(SRunner *sr); /* failures and errors */
void srunner_free(SRunner *sr);

/* Tests [start, end) of a loop test; an exit test passes when the test
 * ends the process with exit(exit_value). */
void ck_add_test_(TCase *tc, const TTest *test, int start, int end, int is_exit_test,
                  int exit_value);
#define tcase_add_test(tc, test) ck_add_test_((tc), (test), 0, 1, 0, 0)
#define tcase_add_loop_test(tc, test, start, end) ck_add_test_((tc), (test), (start), (end), 0, 0)
#define tcase_add_exit_test(tc, test, value) ck_add_test_((tc), (test), 0, 1, 1, (value))

/* START_TEST(name) { ... } END_TEST defines the test function and `name`,
 * the TTest that tcase_add_test takes. The test's first line is its first
 * checkpoint: a crash before any assertion is reported "after" it. */
#define START_TEST(name)                                                                           \
    static void name##_fn(int _i);                                                                 \
    static const TTest name##_ttest = {#name, name##_fn, __FILE__, __LINE__};                      \
    static const TTest *const name = &name##_ttest;                                                \
    static void name##_fn(int _i) {                                                                \
        (void)_i;                                                                                  \
        ck_mark_point_(__FILE__, __LINE__);
#define END_TEST }

/* A format attribute lets the compiler check the messages' arguments;
 * MinGW's printf family is the C99 one (__USE_MINGW_ANSI_STDIO), whose
 * archetype there is gnu_printf. */
#if defined(__MINGW32__)
#define CK_PRINTF_(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__GNUC__)
#define CK_PRINTF_(f, a) __attribute__((format(printf, f, a)))
#else
#define CK_PRINTF_(f, a)
#endif

/* The last assertion that passed, for reports of a crash "after this point". */
void ck_mark_point_(const char *file, int line);
/* A failed assertion: the message is fmt's, or dflt when fmt is NULL. */
_Noreturn void ck_fail_(const char *file, int line, const char *dflt, const char *fmt, ...)
    CK_PRINTF_(4, 5);
/* Hex of the n bytes at x and y around their first difference, for
 * ck_assert_mem_*; hx and hy hold 2 * 64 + 4 characters. */
void ck_hex_pair_(const void *x, const void *y, size_t n, char *hx, char *hy);

#define ck_assert_msg(expr, ...)                                                                   \
    ((expr) ? ck_mark_point_(__FILE__, __LINE__)                                                   \
            : ck_fail_(__FILE__, __LINE__, "Assertion '" #expr "' failed", __VA_ARGS__))
#define ck_assert(expr) ck_assert_msg(expr, NULL)
#define ck_abort_msg(...) ck_fail_(__FILE__, __LINE__, "Failed", __VA_ARGS__)

/* Comparisons name both operands and their values, as Check does:
 * "Assertion 'x == 3' failed: x == 2, 3 == 3". Each operand is evaluated
 * once, converted to the comparison's type. */
#define ck_cmp_(T, F, X, OP, Y)                                                                    \
    do {                                                                                           \
        T ck_x_ = (X), ck_y_ = (Y);                                                                \
        ck_assert_msg(ck_x_ OP ck_y_, "Assertion '%s' failed: %s == " F ", %s == " F,              \
                      #X " " #OP " " #Y, #X, ck_x_, #Y, ck_y_);                                    \
    } while (0)
#define ck_assert_int_eq(X, Y) ck_cmp_(intmax_t, "%jd", X, ==, Y)
#define ck_assert_int_ne(X, Y) ck_cmp_(intmax_t, "%jd", X, !=, Y)
#define ck_assert_int_lt(X, Y) ck_cmp_(intmax_t, "%jd", X, <, Y)
#define ck_assert_int_le(X, Y) ck_cmp_(intmax_t, "%jd", X, <=, Y)
#define ck_assert_int_gt(X, Y) ck_cmp_(intmax_t, "%jd", X, >, Y)
#define ck_assert_int_ge(X, Y) ck_cmp_(intmax_t, "%jd", X, >=, Y)
#define ck_assert_uint_eq(X, Y) ck_cmp_(uintmax_t, "%ju", X, ==, Y)
#define ck_assert_uint_ne(X, Y) ck_cmp_(uintmax_t, "%ju", X, !=, Y)
#define ck_assert_uint_lt(X, Y) ck_cmp_(uintmax_t, "%ju", X, <, Y)
#define ck_assert_uint_le(X, Y) ck_cmp_(uintmax_t, "%ju", X, <=, Y)
#define ck_assert_uint_gt(X, Y) ck_cmp_(uintmax_t, "%ju", X, >, Y)
#define ck_assert_uint_ge(X, Y) ck_cmp_(uintmax_t, "%ju", X, >=, Y)
/* Floats compare as floats and doubles as doubles; both print with %g. */
#define ck_assert_float_eq(X, Y) ck_cmp_(float, "%g", X, ==, Y)
#define ck_assert_float_ne(X, Y) ck_cmp_(float, "%g", X, !=, Y)
#define ck_assert_float_lt(X, Y) ck_cmp_(float, "%g", X, <, Y)
#define ck_assert_float_le(X, Y) ck_cmp_(float, "%g", X, <=, Y)
#define ck_assert_float_gt(X, Y) ck_cmp_(float, "%g", X, >, Y)
#define ck_assert_float_ge(X, Y) ck_cmp_(float, "%g", X, >=, Y)
#define ck_assert_double_eq(X, Y) ck_cmp_(double, "%g", X, ==, Y)
#define ck_assert_double_ne(X, Y) ck_cmp_(double, "%g", X, !=, Y)
#define ck_assert_double_lt(X, Y) ck_cmp_(double, "%g", X, <, Y)
#define ck_assert_double_le(X, Y) ck_cmp_(double, "%g", X, <=, Y)
#define ck_assert_double_gt(X, Y) ck_cmp_(double, "%g", X, >, Y)
#define ck_assert_double_ge(X, Y) ck_cmp_(double, "%g", X, >=, Y)
#define ck_assert_double_eq_tol(X, Y, T)                                                           \
    do {                                                                                           \
        double ck_x_ = (X), ck_y_ = (Y), ck_t_ = (T);                                              \
        ck_assert_msg(fabsl(ck_y_ - ck_x_) < ck_t_,                                                \
                      "Assertion '%s' failed: %s == %g, %s == %g, %s == %g",                       \
                      "fabsl(" #Y " - " #X ") < " #T, #X, ck_x_, #Y, ck_y_, #T, ck_t_);            \
    } while (0)

/* A NULL string prints as (null), without quotes, and equals nothing. */
#define ck_q_(s) ((s) ? "\"" : "")
#define ck_s_(s) ((s) ? (s) : "(null)")
#define ck_str_(X, OP, Y)                                                                          \
    do {                                                                                           \
        const char *ck_x_ = (X), *ck_y_ = (Y);                                                     \
        ck_assert_msg(ck_x_ &&ck_y_ &&strcmp(ck_x_, ck_y_) OP 0,                                   \
                      "Assertion '%s' failed: %s == %s%s%s, %s == %s%s%s", #X " " #OP " " #Y, #X,  \
                      ck_q_(ck_x_), ck_s_(ck_x_), ck_q_(ck_x_), #Y, ck_q_(ck_y_), ck_s_(ck_y_),    \
                      ck_q_(ck_y_));                                                               \
    } while (0)
#define ck_assert_str_eq(X, Y) ck_str_(X, ==, Y)
#define ck_assert_str_ne(X, Y) ck_str_(X, !=, Y)

/* Pointers print as numbers ("0" for NULL, else 0x...). */
#define ck_ptr_(X, OP, Y)                                                                          \
    do {                                                                                           \
        const void *ck_x_ = (X), *ck_y_ = (Y);                                                     \
        ck_assert_msg(ck_x_ OP ck_y_, "Assertion '%s' failed: %s == %#jx, %s == %#jx",             \
                      #X " " #OP " " #Y, #X, (uintmax_t)(uintptr_t)ck_x_, #Y,                      \
                      (uintmax_t)(uintptr_t)ck_y_);                                                \
    } while (0)
#define ck_assert_ptr_eq(X, Y) ck_ptr_(X, ==, Y)
#define ck_assert_ptr_ne(X, Y) ck_ptr_(X, !=, Y)
#define ck_null_(X, OP)                                                                            \
    do {                                                                                           \
        const void *ck_x_ = (X);                                                                   \
        ck_assert_msg(ck_x_ OP NULL, "Assertion '%s' failed: %s == %#jx", #X " " #OP " NULL", #X,  \
                      (uintmax_t)(uintptr_t)ck_x_);                                                \
    } while (0)
#define ck_assert_ptr_null(X) ck_null_(X, ==)
#define ck_assert_ptr_nonnull(X) ck_null_(X, !=)

#define ck_mem_(X, OP, Y, N)                                                                       \
    do {                                                                                           \
        const void *ck_x_ = (X), *ck_y_ = (Y);                                                     \
        size_t ck_n_ = (N);                                                                        \
        char ck_hx_[2 * 64 + 4], ck_hy_[2 * 64 + 4];                                               \
        if (memcmp(ck_x_, ck_y_, ck_n_) OP 0) {                                                    \
            ck_mark_point_(__FILE__, __LINE__);                                                    \
        } else {                                                                                   \
            ck_hex_pair_(ck_x_, ck_y_, ck_n_, ck_hx_, ck_hy_);                                     \
            ck_fail_(__FILE__, __LINE__, NULL,                                                     \
                     "Assertion '%s' failed: %s == \"%s\", %s == \"%s\"", #X " " #OP " " #Y, #X,   \
                     ck_hx_, #Y, ck_hy_);                                                          \
        }                                                                                          \
    } while (0)
#define ck_assert_mem_eq(X, Y, N) ck_mem_(X, ==, Y, N)
#define ck_assert_mem_ne(X, Y, N) ck_mem_(X, !=, Y, N)

#endif
