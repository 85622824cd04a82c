/* The Check-compatible layer's own suite: tests whose outcomes are known
 * (passes, each kind of failed assertion, fixtures, loop and exit tests,
 * a crash, timeouts). selftest.sh runs it and compares the report line by
 * line; it finds a failure's line number by the text of its assertion, so
 * each failing assertion below appears once. It builds against Check too,
 * which gives the same report. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
static void pause_ms(int ms) { Sleep((DWORD)ms); }
#else
#include <time.h>
static void pause_ms(int ms) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}
#endif

/* The fixture: set before each test (a test changes it, the next one must
 * see it set again); open_fixtures counts setups not yet torn down, which
 * without fork shows that a failed test's teardown ran. */
static int fixture, open_fixtures;
static void set_fixture(void) {
    fixture = 42;
    open_fixtures++;
}
static void close_fixture(void) { open_fixtures--; }
static void failing_setup(void) { ck_assert_int_eq(fixture, -1); }
static void failing_teardown(void) { ck_assert_msg(fixture == -2, "teardown refuses %d", fixture); }

START_TEST(passes) {
    unsigned char a[3] = {1, 2, 3}, b[3] = {1, 2, 3};
    int x = 1;
    ck_assert_int_eq(fixture, 42);
    fixture = 0;
    ck_assert(x == 1);
    ck_assert_msg(x > 0, "x is %d", x);
    ck_assert_int_ne(x, 2);
    ck_assert_int_lt(-1, x);
    ck_assert_int_le(x, 1);
    ck_assert_int_gt(x, 0);
    ck_assert_int_ge(x, 1);
    ck_assert_uint_eq(UINTMAX_MAX, UINTMAX_MAX);
    ck_assert_uint_lt(1u, 2u);
    ck_assert_uint_le(2u, 2u);
    ck_assert_uint_gt(3u, 2u);
    ck_assert_uint_ge(2u, 2u);
    ck_assert_float_eq(0.5f, 0.5f);
    ck_assert_float_ne(0.5f, 0.25f);
    ck_assert_float_le(0.5f, 0.5f);
    ck_assert_double_eq_tol(1.0, 1.05, 0.1);
    ck_assert_str_eq("abc", "abc");
    ck_assert_ptr_eq(a, a);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_null(NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_mem_eq(a, b, 3);
}
END_TEST

START_TEST(fail_int) {
    int64_t x = INT64_MIN;
    ck_assert_int_eq(x, 3);
}
END_TEST

START_TEST(fail_uint) {
    unsigned x = 2;
    ck_assert_uint_ge(x, 3);
}
END_TEST

START_TEST(fail_str) {
    const char *s = "ab";
    ck_assert_str_eq(s, "cd");
}
END_TEST

START_TEST(fail_str_null) {
    const char *s = NULL;
    ck_assert_str_eq(s, "x");
}
END_TEST

START_TEST(fail_plain) {
    int y = 0;
    ck_assert(y == 1);
}
END_TEST

START_TEST(fail_message) { ck_assert_msg(fixture == 0, "fixture is %d, not %s", fixture, "0"); }
END_TEST

START_TEST(fail_abort) { ck_abort_msg("stopped at %s", "once"); }
END_TEST

START_TEST(fail_float) {
    float f = 0.1f;
    ck_assert_float_eq(f, 123456789.0f);
}
END_TEST

START_TEST(fail_tolerance) {
    double d = 1.5;
    ck_assert_double_eq_tol(d, 1.0, 0.1);
}
END_TEST

START_TEST(fail_mem) {
    unsigned char u[3] = {1, 2, 3}, v[3] = {1, 2, 0xfe};
    ck_assert_mem_eq(u, v, 3);
}
END_TEST

START_TEST(fail_ptr) {
    int *p = NULL;
    ck_assert_ptr_eq(p, (int *)16);
}
END_TEST

START_TEST(fail_nonnull) {
    int *q = NULL;
    ck_assert_ptr_nonnull(q);
}
END_TEST

/* iterations 0..3: 2 fails; each starts from a fresh fixture */
START_TEST(loop) {
    ck_assert_int_eq(fixture, 42);
    ck_assert_int_eq(open_fixtures, 1);
    fixture = _i;
    ck_assert_int_ne(_i, 2);
}
END_TEST

START_TEST(exits_3) { exit(3); }
END_TEST

START_TEST(exits_0) { exit(0); }
END_TEST

START_TEST(returns) { ck_assert_int_eq(fixture, 42); }
END_TEST

START_TEST(fails_before_exit) { ck_abort_msg("no exit"); }
END_TEST

START_TEST(crash) {
    ck_assert_int_eq(fixture, 42);
    abort();
}
END_TEST

START_TEST(slow) { pause_ms(1000); }
END_TEST

START_TEST(exit_in_test) { exit(5); }
END_TEST

START_TEST(sleeps) { pause_ms(300); }
END_TEST

int main(void) {
    Suite *s = suite_create("ck");
    TCase *tc = tcase_create("asserts");
    tcase_add_checked_fixture(tc, set_fixture, close_fixture);
    tcase_add_test(tc, passes);
    tcase_add_test(tc, fail_int);
    tcase_add_test(tc, fail_uint);
    tcase_add_test(tc, fail_str);
    tcase_add_test(tc, fail_str_null);
    tcase_add_test(tc, fail_plain);
    tcase_add_test(tc, fail_message);
    tcase_add_test(tc, fail_abort);
    tcase_add_test(tc, fail_float);
    tcase_add_test(tc, fail_tolerance);
    tcase_add_test(tc, fail_mem);
    tcase_add_test(tc, fail_ptr);
    tcase_add_test(tc, fail_nonnull);
    tcase_add_loop_test(tc, loop, 0, 4);
    suite_add_tcase(s, tc);

    tc = tcase_create("fixtures");
    tcase_add_checked_fixture(tc, failing_setup, NULL);
    tcase_add_test(tc, passes);
    suite_add_tcase(s, tc);
    tc = tcase_create("teardowns");
    tcase_add_checked_fixture(tc, set_fixture, failing_teardown);
    tcase_add_test(tc, passes);
    suite_add_tcase(s, tc);

    tc = tcase_create("exits");
    tcase_add_checked_fixture(tc, set_fixture, NULL);
    tcase_add_exit_test(tc, exits_3, 3);
    tcase_add_exit_test(tc, exits_0, 3);
    tcase_add_exit_test(tc, returns, 3);
    tcase_add_exit_test(tc, fails_before_exit, 3);
    tcase_add_exit_test(tc, exits_0, 0);
    suite_add_tcase(s, tc);

    /* what needs a process per test: left out without fork */
    tc = tcase_create("crashes");
    tcase_add_checked_fixture(tc, set_fixture, NULL);
    tcase_set_timeout(tc, 0.25);
    tcase_add_test(tc, crash);
    tcase_add_test(tc, slow);
    tcase_add_test(tc, exit_in_test);
    tcase_add_test(tc, exits_0);
    suite_add_tcase(s, tc);
    tc = tcase_create("default_timeout");
    tcase_add_test(tc, sleeps);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
