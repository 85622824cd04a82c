#!/bin/sh
# The Check-compatible layer's test: runs selftest.c's suite with the
# layer's options and compares each report, line by line, and the exit
# status with what Check prints for it.
#   selftest.sh PROGRAM SOURCE MODES
# MODES: "fork nofork" (POSIX), "nofork" (Windows: no fork, so no crash or
# timeout tests), "fork" (the Check library itself, whose no-fork mode
# cannot run exit tests). In a cross build meson names the emulator in
# MESON_EXE_WRAPPER.
set -u
prog=$1 src=$2 modes=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# each check sets the variables it tests; none comes from outside
unset CK_FORK CK_RUN_SUITE CK_RUN_CASE CK_DEFAULT_TIMEOUT CK_TIMEOUT_MULTIPLIER CK_VERBOSITY

# at TEXT: the line of SOURCE that holds TEXT (each appears once)
at() {
    n=$(grep -n -F -- "$1" "$src" | cut -d: -f1)
    echo "selftest.c:${n:-?}"
}

# ... | check NAME [VAR=VALUE...]: the report expected on stdin, then
# "exit N". It runs in a subshell of the pipe: a failure leaves a file.
check() {
    name=$1
    shift
    cat >"$work/want"
    status=0
    # the wrapper is a command line ("qemu-riscv64 -L /usr/..."): split it
    # shellcheck disable=SC2086
    env "$@" ${MESON_EXE_WRAPPER:-} "$prog" >"$work/out" 2>"$work/err" || status=$?
    # without \r (Windows) and with the source file's folder left out
    tr -d '\r' <"$work/out" | sed 's|^[^:]*[/\\]selftest\.c:|selftest.c:|' >"$work/got"
    echo "exit $status" >>"$work/got"
    if cmp -s "$work/want" "$work/got"; then
        echo "ok: $name"
    else
        # "checks:" in lower case: CI counts the lines "Checks: N, ..." of
        # the log as the suites' summaries
        echo "FAILED: $name (- expected, + reported)"
        diff -u "$work/want" "$work/got" | tail -n +3 | sed 's/Checks:/checks:/'
        sed 's/^/  stderr: /' "$work/err"
        touch "$work/failed"
    fi
}

# The failures every mode reports alike.
asserts() {
    cat <<EOF
$(at 'ck_assert_int_eq(x, 3)'):F:asserts:fail_int:0: Assertion 'x == 3' failed: x == -9223372036854775808, 3 == 3
$(at 'ck_assert_uint_ge(x, 3)'):F:asserts:fail_uint:0: Assertion 'x >= 3' failed: x == 2, 3 == 3
$(at 'ck_assert_str_eq(s, "cd")'):F:asserts:fail_str:0: Assertion 's == "cd"' failed: s == "ab", "cd" == "cd"
$(at 'ck_assert_str_eq(s, "x")'):F:asserts:fail_str_null:0: Assertion 's == "x"' failed: s == (null), "x" == "x"
$(at 'ck_assert(y == 1)'):F:asserts:fail_plain:0: Assertion 'y == 1' failed
$(at 'fixture is %d'):F:asserts:fail_message:0: fixture is 42, not 0
$(at '"stopped at %s"'):F:asserts:fail_abort:0: stopped at once
$(at 'ck_assert_float_eq(f,'):F:asserts:fail_float:0: Assertion 'f == 123456789.0f' failed: f == 0.1, 123456789.0f == 1.23457e+08
$(at 'ck_assert_double_eq_tol(d,'):F:asserts:fail_tolerance:0: Assertion 'fabsl(1.0 - d) < 0.1' failed: d == 1.5, 1.0 == 1, 0.1 == 0.1
$(at 'ck_assert_mem_eq(u, v, 3)'):F:asserts:fail_mem:0: Assertion 'u == v' failed: u == "010203", v == "0102fe"
$(at '(int *)16)'):F:asserts:fail_ptr:0: Assertion 'p == (int *)16' failed: p == 0, (int *)16 == 0x10
$(at 'nonnull(q)'):F:asserts:fail_nonnull:0: Assertion 'q != NULL' failed: q == 0
$(at 'ck_assert_int_ne(_i, 2)'):F:asserts:loop:2: Assertion '_i != 2' failed: _i == 2, 2 == 2
EOF
}
fixtures() {
    cat <<EOF
$(at 'ck_assert_int_eq(fixture, -1)'):S:fixtures:passes:0: Assertion 'fixture == -1' failed: fixture == 0, -1 == -1
$(at 'teardown refuses'):S:teardowns:passes:0: teardown refuses 0
EOF
}
exits() {
    cat <<EOF
$(at 'START_TEST(exits_0)'):E:exits:exits_0:0: (after this point) Early exit with return value 0
$(at 'START_TEST(returns)'):E:exits:returns:0: (after this point) Early exit with return value 0
$(at '"no exit"'):F:exits:fails_before_exit:0: no exit
EOF
}

for mode in $modes; do
    case $mode in
    fork)
        # a crash is reported after the last assertion that passed
        crash_at=$(grep -n -F 'abort();' "$src" | cut -d: -f1)
        {
            echo 'Running suite(s): ck'
            echo '27%: Checks: 29, Failures: 16, Errors: 5'
            asserts
            fixtures
            exits
            echo "selftest.c:$((crash_at - 1)):E:crashes:crash:0: (after this point) Received signal 6 (Aborted)"
            echo "$(at 'START_TEST(slow)'):E:crashes:slow:0: (after this point) Test timeout expired"
            echo "$(at 'START_TEST(exit_in_test)'):E:crashes:exit_in_test:0: (after this point) Early exit with return value 5"
            echo 'exit 1'
        } | check "fork: every outcome"
        # 0.25 s times 8 is time enough for the slow test's second
        {
            echo 'Running suite(s): ck'
            echo '50%: Checks: 4, Failures: 0, Errors: 2'
            echo "selftest.c:$((crash_at - 1)):E:crashes:crash:0: (after this point) Received signal 6 (Aborted)"
            echo "$(at 'START_TEST(exit_in_test)'):E:crashes:exit_in_test:0: (after this point) Early exit with return value 5"
            echo 'exit 1'
        } | check "fork: CK_TIMEOUT_MULTIPLIER" CK_RUN_CASE=crashes CK_TIMEOUT_MULTIPLIER=8
        {
            echo 'Running suite(s): ck'
            echo '0%: Checks: 1, Failures: 0, Errors: 1'
            echo "$(at 'START_TEST(sleeps)'):E:default_timeout:sleeps:0: (after this point) Test timeout expired"
            echo 'exit 1'
        } | check "fork: CK_DEFAULT_TIMEOUT" CK_RUN_CASE=default_timeout CK_DEFAULT_TIMEOUT=0.1
        ;;
    nofork)
        for case in asserts fixtures exits; do
            case $case in
            asserts) head='23%: Checks: 17, Failures: 13, Errors: 0' ;;
            fixtures) head='0%: Checks: 1, Failures: 1, Errors: 0' ;;
            exits) head='40%: Checks: 5, Failures: 1, Errors: 2' ;;
            esac
            {
                echo 'Running suite(s): ck'
                echo "$head"
                $case | grep ":$case:"
                echo 'exit 1'
            } | check "no fork: $case" CK_FORK=no CK_RUN_CASE=$case
        done
        {
            echo 'Running suite(s): ck'
            echo '0%: Checks: 1, Failures: 1, Errors: 0'
            fixtures | grep ':teardowns:'
            echo 'exit 1'
        } | check "no fork: teardowns" CK_FORK=no CK_RUN_CASE=teardowns
        ;;
    esac
done
{
    # Check names no suite when none of its tests runs
    echo 'Running suite(s):100%: Checks: 0, Failures: 0, Errors: 0'
    echo 'exit 0'
} | check "CK_RUN_SUITE of another suite" CK_RUN_SUITE=other
{
    echo 'Running suite(s): ck'
    echo '100%: Checks: 1, Failures: 0, Errors: 0'
    echo 'exit 0'
} | check "CK_RUN_CASE of a passing case" CK_RUN_SUITE=ck CK_RUN_CASE=default_timeout
if [ -e "$work/failed" ]; then exit 1; fi
