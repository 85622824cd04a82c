/* The runner behind check.h: suites, test cases, running each test (in a
 * child process, in this process, or in a new instance of the program for
 * an exit test without fork) and Check's report. */
#include "check.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef _WIN32
#include <process.h>
#include <windows.h>
#else
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
#endif

enum { DEFAULT_TIMEOUT = 4 }; /* seconds, Check's default */

typedef struct entry {
    const TTest *test;
    int start, end, is_exit_test, exit_value;
} entry;

struct TCase {
    char *name;
    double timeout;
    entry *tests;
    int ntests;
    SFun *setups, *teardowns;
    int nfixtures;
};

struct Suite {
    char *name;
    TCase **cases;
    int ncases;
};

struct SRunner {
    Suite *suite;
    int checks, failures, errors;
    char **lines; /* the report's lines after the summary */
    int nlines;
};

/* What a test left: the last assertion that passed (or the one that
 * failed), and a failure's message. In fork mode it lives in memory shared
 * with the child, so the runner reads it whatever way the child ended; the
 * file names are __FILE__ literals, at the same address in both. */
typedef struct record {
    int failed;
    char stage; /* 'S' in a fixture, 'F' in the test */
    const char *file;
    int line;
    char message[16384];
} record;

static record own_record;
static record *rec = &own_record;
static int running;     /* a test or fixture runs (an assertion elsewhere ends the program) */
static int in_child;    /* a failure ends this process instead of jumping back */
static jmp_buf back;    /* no-fork: where a failed assertion returns to */
static char *child_out; /* a re-run exit test: the file its record goes to */

static void *grow(void *p, int n, size_t size) {
    p = realloc(p, (size_t)(n + 1) * size);
    if (!p) {
        fputs("check: out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *copy(const char *s) {
    char *c = grow(NULL, (int)strlen(s), 1);
    return strcpy(c, s);
}

static double env_number(const char *name, double fallback) {
    const char *v = getenv(name);
    char *end;
    double x = v ? strtod(v, &end) : 0;
    return v && *v && !*end && x >= 0 ? x : fallback;
}

Suite *suite_create(const char *name) {
    Suite *s = grow(NULL, 0, sizeof *s);
    *s = (Suite){.name = copy(name ? name : "")};
    return s;
}

void suite_add_tcase(Suite *s, TCase *tc) {
    s->cases = grow(s->cases, s->ncases, sizeof *s->cases);
    s->cases[s->ncases++] = tc;
}

TCase *tcase_create(const char *name) {
    TCase *tc = grow(NULL, 0, sizeof *tc);
    *tc = (TCase){.name = copy(name ? name : ""),
                  .timeout = env_number("CK_DEFAULT_TIMEOUT", DEFAULT_TIMEOUT)};
    return tc;
}

void tcase_set_timeout(TCase *tc, double seconds) {
    if (seconds >= 0)
        tc->timeout = seconds;
}

void tcase_add_checked_fixture(TCase *tc, SFun setup, SFun teardown) {
    tc->setups = grow(tc->setups, tc->nfixtures, sizeof *tc->setups);
    tc->teardowns = grow(tc->teardowns, tc->nfixtures, sizeof *tc->teardowns);
    tc->setups[tc->nfixtures] = setup;
    tc->teardowns[tc->nfixtures++] = teardown;
}

void ck_add_test_(TCase *tc, const TTest *test, int start, int end, int is_exit_test,
                  int exit_value) {
    tc->tests = grow(tc->tests, tc->ntests, sizeof *tc->tests);
    tc->tests[tc->ntests++] = (entry){test, start, end, is_exit_test, exit_value};
}

SRunner *srunner_create(Suite *s) {
    SRunner *sr = grow(NULL, 0, sizeof *sr);
    *sr = (SRunner){.suite = s};
    return sr;
}

void srunner_free(SRunner *sr) {
    if (!sr)
        return;
    for (int c = 0; sr->suite && c < sr->suite->ncases; c++) {
        TCase *tc = sr->suite->cases[c];
        free(tc->name);
        free(tc->tests);
        free(tc->setups);
        free(tc->teardowns);
        free(tc);
    }
    if (sr->suite) {
        free(sr->suite->cases);
        free(sr->suite->name);
        free(sr->suite);
    }
    for (int i = 0; i < sr->nlines; i++)
        free(sr->lines[i]);
    free(sr->lines);
    free(sr);
}

int srunner_ntests_failed(SRunner *sr) { return sr->failures + sr->errors; }

void ck_mark_point_(const char *file, int line) {
    if (rec->failed)
        return; /* a teardown after a failed test keeps the failure's place */
    rec->file = file;
    rec->line = line;
}

void ck_fail_(const char *file, int line, const char *dflt, const char *fmt, ...) {
    if (!rec->failed) {
        rec->failed = 1;
        rec->file = file;
        rec->line = line;
        if (fmt) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(rec->message, sizeof rec->message, fmt, ap);
            va_end(ap);
        } else {
            snprintf(rec->message, sizeof rec->message, "%s", dflt);
        }
    }
    if (!running) {
        fprintf(stderr, "%s:%d: %s (outside a test)\n", file, line, rec->message);
        exit(EXIT_FAILURE);
    }
    if (in_child)
        exit(EXIT_FAILURE); /* a re-run child writes its record at exit */
    longjmp(back, 1);
}

void ck_hex_pair_(const void *x, const void *y, size_t n, char *hx, char *hy) {
    const unsigned char *a = x, *b = y;
    size_t first = 0, start, end;
    while (first < n && a[first] == b[first])
        first++;
    /* at most 64 bytes, starting a little before the first difference */
    start = n <= 64 || first < 8 ? 0 : first - 8;
    if (start + 64 > n)
        start = n > 64 ? n - 64 : 0;
    end = start + 64 < n ? start + 64 : n;
    char *p = hx, *q = hy;
    if (start > 0)
        p += sprintf(p, "..."), q += sprintf(q, "...");
    for (size_t i = start; i < end; i++)
        p += sprintf(p, "%02x", a[i]), q += sprintf(q, "%02x", b[i]);
    if (end < n)
        p += sprintf(p, "..."), q += sprintf(q, "...");
    *p = *q = 0;
}

/* ---- one test: fixtures and the test function, in the current process ---- */

/* Runs setups, test and teardowns, returning when they are done or when
 * one failed (a failure jumps back here unless in_child). Without fork,
 * Check runs the teardowns after a failed test too (not after a failed
 * setup), so a failed test does not leave its fixture's state to the
 * next; with fork the child is gone anyway. */
static void run_here(TCase *tc, const entry *e, int i) {
    running = 1;
    rec->stage = 'S';
    if (setjmp(back) == 0)
        for (int f = 0; f < tc->nfixtures; f++)
            if (tc->setups[f])
                tc->setups[f]();
    if (!rec->failed) {
        if (setjmp(back) == 0) {
            rec->stage = 'F';
            e->test->fn(i);
        }
        if (setjmp(back) == 0) {
            if (!rec->failed)
                rec->stage = 'S';
            for (int f = 0; f < tc->nfixtures; f++)
                if (tc->teardowns[f])
                    tc->teardowns[f]();
        }
    }
    running = 0;
}

/* ---- the report ---- */

static void add_line(SRunner *sr, const char *file, int line, char kind, const TCase *tc,
                     const entry *e, int i, const char *message) {
    int n = snprintf(NULL, 0, "%s:%d:%c:%s:%s:%d: %s", file, line, kind, tc->name, e->test->name, i,
                     message);
    char *s = grow(NULL, n, 1);
    snprintf(s, (size_t)n + 1, "%s:%d:%c:%s:%s:%d: %s", file, line, kind, tc->name, e->test->name,
             i, message);
    sr->lines = grow(sr->lines, sr->nlines, sizeof *sr->lines);
    sr->lines[sr->nlines++] = s;
}

/* How a test's process ended, and the value that goes with it. */
enum ending { EXITED, SIGNALLED, TIMED_OUT, NOT_STARTED };

/* Counts and reports one test from its record and the way it ended. */
static void judge(SRunner *sr, enum print_output mode, const TCase *tc, const entry *e, int i,
                  const record *r, enum ending how, int value) {
    char why[160];
    sr->checks++;
    if (r->failed) {
        sr->failures++;
        add_line(sr, r->file, r->line, r->stage, tc, e, i, r->message);
        return;
    }
    if (how == EXITED && value == (e->is_exit_test ? e->exit_value : 0)) {
        if (mode == CK_VERBOSE)
            add_line(sr, r->file, r->line, 'P', tc, e, i, "Passed");
        return;
    }
    if (how == TIMED_OUT)
        snprintf(why, sizeof why, "(after this point) Test timeout expired");
    else if (how == NOT_STARTED)
        snprintf(why, sizeof why,
                 "(after this point) The program could not be run again for "
                 "this exit test");
#ifndef _WIN32
    else if (how == SIGNALLED)
        snprintf(why, sizeof why, "(after this point) Received signal %d (%s)", value,
                 strsignal(value));
#endif
    else
        snprintf(why, sizeof why, "(after this point) Early exit with return value %d", value);
    sr->errors++;
    add_line(sr, r->file, r->line, 'E', tc, e, i, why);
}

static void reset_record(const entry *e) {
    rec->failed = 0;
    rec->stage = 'S';
    rec->file = e->test->file;
    rec->line = e->test->line;
    rec->message[0] = 0;
}

/* ---- exit tests without fork: the program again, for one test ----
 * The child finds its test from CK_RERUN_ (case index, test index,
 * iteration, record file), runs it and writes its record to the file when
 * it exits; the runner reads it and the exit status. */

#define RERUN_VAR "CK_RERUN_"

static void write_child_record(void) {
    FILE *f = fopen(child_out, "w");
    if (!f)
        return;
    fprintf(f, "%d %c %d %s\n%s", rec->failed, rec->stage, rec->line, rec->file, rec->message);
    fclose(f);
}

/* In a child process: runs one test, whose record goes to the file at
 * path when the process exits, and exits 0 if the test returns (as a
 * forked child does). */
static _Noreturn void run_one_and_exit(TCase *tc, const entry *e, int i, const char *path) {
    child_out = copy(path);
    in_child = 1;
    reset_record(e);
    atexit(write_child_record);
    run_here(tc, e, i);
    exit(EXIT_SUCCESS);
}

/* In a re-run child: runs its one test (and never returns); returns 0 in
 * any other process. */
static int run_as_child(Suite *s) {
    const char *v = getenv(RERUN_VAR);
    int c, t, i, at = 0;
    if (!v || sscanf(v, "%d %d %d %n", &c, &t, &i, &at) != 3 || !at)
        return 0;
    if (c < 0 || c >= s->ncases || t < 0 || t >= s->cases[c]->ntests)
        exit(125);
    run_one_and_exit(s->cases[c], &s->cases[c]->tests[t], i, v + at);
}

/* Reads a child's record into r (file names into file_buf); returns 0 if
 * there is none. */
static int read_child_record(const char *path, record *r, char *file_buf, size_t file_size) {
    FILE *f = fopen(path, "r");
    char line[1024];
    int found = 0;
    if (!f)
        return 0;
    if (fgets(line, sizeof line, f)) {
        int failed, at = 0;
        char stage;
        if (sscanf(line, "%d %c %d %n", &failed, &stage, &r->line, &at) == 3 && at) {
            line[strcspn(line, "\n")] = 0;
            snprintf(file_buf, file_size, "%s", line + at);
            r->file = file_buf;
            r->stage = stage;
            r->failed = failed;
            size_t n = fread(r->message, 1, sizeof r->message - 1, f);
            r->message[n] = 0;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* A file name for the child's record; "" if none could be made. */
static void temp_name(char *out, size_t size) {
#ifdef _WIN32
    char dir[MAX_PATH];
    DWORD n = GetTempPathA(sizeof dir, dir);
    if (n == 0 || n > sizeof dir || !GetTempFileNameA(dir, "ck", 0, out) || strlen(out) >= size)
        out[0] = 0;
#else
    const char *dir = getenv("TMPDIR");
    snprintf(out, size, "%s/ck-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(out);
    if (fd < 0)
        out[0] = 0;
    else
        close(fd);
#endif
}

#ifndef _WIN32
/* Waits for a child running one test; returns 0 if it did not start (the
 * loader's status 127, and no record). */
static int wait_for(pid_t pid, const char *path, record *r, char *file_buf, size_t file_size,
                    enum ending *how, int *result) {
    int status;
    if (pid <= 0 || waitpid(pid, &status, 0) != pid)
        return 0;
    int found = read_child_record(path, r, file_buf, file_size);
    if (WIFSIGNALED(status))
        *how = SIGNALLED, *result = WTERMSIG(status);
    else if (WIFEXITED(status) && (found || WEXITSTATUS(status) != 127))
        *how = EXITED, *result = WEXITSTATUS(status);
    else
        return 0;
    return 1;
}
#endif

static void run_again(SRunner *sr, enum print_output mode, int c, int t, int i) {
    static record r;
    TCase *tc = sr->suite->cases[c];
    const entry *e = &tc->tests[t];
    char path[1024], value[1100], file_buf[1024];
    enum ending how = NOT_STARTED;
    int result = 0;
    temp_name(path, sizeof path);
    snprintf(value, sizeof value, "%d %d %d %s", c, t, i, path);
    r = (record){.stage = 'S', .file = e->test->file, .line = e->test->line};
    fflush(NULL);
#ifdef _WIN32
    char exe[MAX_PATH], quoted[MAX_PATH + 2];
    DWORD n = GetModuleFileNameA(NULL, exe, MAX_PATH);
    /* _spawnv joins argv into one command line: quote the path */
    snprintf(quoted, sizeof quoted, "\"%s\"", exe);
    const char *argv[] = {quoted, NULL};
    if (path[0] && n > 0 && n < MAX_PATH && _putenv_s(RERUN_VAR, value) == 0) {
        intptr_t status = _spawnv(_P_WAIT, exe, argv);
        _putenv_s(RERUN_VAR, "");
        if (status != -1)
            how = EXITED, result = (int)status;
    }
    if (path[0])
        read_child_record(path, &r, file_buf, sizeof file_buf);
#else
    /* The program is Linux's /proc/self/exe (POSIX has no portable name for
     * it). Where the system cannot start it (under an emulator such as
     * qemu-user without binfmt_misc), a forked child runs the test. */
    char *argv[] = {"/proc/self/exe", NULL};
    pid_t pid = -1;
    if (path[0] && setenv(RERUN_VAR, value, 1) == 0) {
        if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
            pid = -1;
        unsetenv(RERUN_VAR);
    }
    if (path[0] && !wait_for(pid, path, &r, file_buf, sizeof file_buf, &how, &result)) {
        pid = fork();
        if (pid == 0)
            run_one_and_exit(tc, e, i, path);
        wait_for(pid, path, &r, file_buf, sizeof file_buf, &how, &result);
    }
#endif
    if (path[0])
        remove(path);
    judge(sr, mode, tc, e, i, &r, how, result);
}

/* ---- fork mode ---- */

#ifndef _WIN32
/* The record in memory the runner shares with its children: a temporary
 * file mapped shared (anonymous mappings are not in POSIX 2008). */
static record *shared_record(void) {
    void *p = MAP_FAILED;
    FILE *f = tmpfile();
    if (f && ftruncate(fileno(f), sizeof(record)) == 0)
        p = mmap(NULL, sizeof(record), PROT_READ | PROT_WRITE, MAP_SHARED, fileno(f), 0);
    if (f)
        fclose(f);
    return p == MAP_FAILED ? NULL : p;
}

/* Runs one test in a child; returns -1 if there was no child to run it. */
static int run_forked(SRunner *sr, enum print_output mode, TCase *tc, const entry *e, int i) {
    double timeout = tc->timeout * env_number("CK_TIMEOUT_MULTIPLIER", 1);
    int status;
    reset_record(e);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        in_child = 1;
        if (timeout > 0) {
            /* the child times itself: SIGALRM's default action ends it */
            struct itimerval t = {{0, 0}, {(time_t)timeout, 0}};
            t.it_value.tv_usec = (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6);
            setitimer(ITIMER_REAL, &t, NULL);
        }
        run_here(tc, e, i);
        exit(EXIT_SUCCESS);
    }
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (w != pid)
        judge(sr, mode, tc, e, i, rec, EXITED, -1);
    else if (WIFEXITED(status))
        judge(sr, mode, tc, e, i, rec, EXITED, WEXITSTATUS(status));
    else
        judge(sr, mode, tc, e, i, rec,
              timeout > 0 && WTERMSIG(status) == SIGALRM ? TIMED_OUT : SIGNALLED, WTERMSIG(status));
    return 0;
}
#endif

/* ---- the run ---- */

void srunner_run_all(SRunner *sr, enum print_output mode) {
    Suite *s = sr->suite;
    if (run_as_child(s))
        return;
    if (mode == CK_ENV) {
        const char *v = getenv("CK_VERBOSITY");
        mode = !v                      ? CK_NORMAL
               : !strcmp(v, "silent")  ? CK_SILENT
               : !strcmp(v, "minimal") ? CK_MINIMAL
               : !strcmp(v, "verbose") ? CK_VERBOSE
                                       : CK_NORMAL;
    }
    const char *only_suite = getenv("CK_RUN_SUITE"), *only_case = getenv("CK_RUN_CASE");
#ifndef _WIN32
    /* fork mode unless CK_FORK=no; on Windows, which has no fork, never */
    const char *fork_env = getenv("CK_FORK");
    record *shared = fork_env && !strcmp(fork_env, "no") ? NULL : shared_record();
    if (shared)
        rec = shared;
#endif
    if (mode != CK_SILENT)
        printf("Running suite(s):");
    int started = 0;
    for (int c = 0; c < s->ncases && !(only_suite && strcmp(only_suite, s->name)); c++) {
        TCase *tc = s->cases[c];
        if (only_case && strcmp(only_case, tc->name))
            continue;
        if (!started && tc->ntests > 0 && mode != CK_SILENT)
            printf(" %s\n", s->name);
        started |= tc->ntests > 0;
        for (int t = 0; t < tc->ntests; t++) {
            const entry *e = &tc->tests[t];
            for (int i = e->start; i < e->end; i++) {
#ifndef _WIN32
                if (shared && run_forked(sr, mode, tc, e, i) == 0)
                    continue;
#endif
                if (e->is_exit_test) {
                    run_again(sr, mode, c, t, i);
                } else {
                    /* Without a process to end, a timeout is not enforced
                     * (as in Check built without fork): it is ignored. */
                    reset_record(e);
                    run_here(tc, e, i);
                    judge(sr, mode, tc, e, i, rec, EXITED, 0);
                }
            }
        }
    }
#ifndef _WIN32
    if (shared)
        munmap(shared, sizeof *shared);
    rec = &own_record;
#endif
    if (mode != CK_SILENT) {
        int passed = sr->checks - sr->failures - sr->errors;
        printf("%d%%: Checks: %d, Failures: %d, Errors: %d\n",
               sr->checks ? 100 * passed / sr->checks : 100, sr->checks, sr->failures, sr->errors);
    }
    for (int l = 0; mode >= CK_NORMAL && l < sr->nlines; l++)
        printf("%s\n", sr->lines[l]);
    fflush(stdout);
}
