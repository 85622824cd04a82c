/* Files: nd_write_file_atomic and the temporaries killed writers leave
 * (the next write into the folder removes those whose process is gone and
 * whose lock is free, never one a live writer holds, and nothing else),
 * and readers that refuse what is not a regular file without waiting. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _WIN32
#include <io.h>
#else
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "data/data.h"
#include "helpers.h"

static char dir[300];

static void make_dir(void) {
    t_dir_make(dir, sizeof dir, "nd_file");
}

static char *in_dir(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", dir, name);
    return buf;
}

/* The folder's names (t_dir_listing) but our temporaries
 * (".nanodiff-tmp."), which are counted in *temporaries. */
static char *listing(char *out, size_t size, int *temporaries) {
    char all[2048];
    t_dir_listing(dir, all, sizeof all);
    out[0] = 0;
    *temporaries = 0;
    for (char *name = strtok(all, " "); name; name = strtok(NULL, " ")) {
        if (strstr(name, ".nanodiff-tmp.") && !strstr(name, "decoy")) {
            ++*temporaries;
            continue;
        }
        if (out[0]) strncat(out, " ", size - strlen(out) - 1);
        strncat(out, name, size - strlen(out) - 1);
    }
    return out;
}

static void remove_dir(void) { t_dir_remove(dir); }

/* 64 KiB of one byte value, in 4 KiB writes */
static int write_block(int fd, void *ctx) {
    unsigned char buf[4096];
    memset(buf, *(unsigned char *)ctx, sizeof buf);
    for (int i = 0; i < 16; i++) {
        int e = nd_write_all(fd, buf, sizeof buf);
        if (e) return e;
    }
    return 0;
}

static void assert_block(const char *path, unsigned char value, long size) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        ck_assert_int_eq(c, value);
        n++;
    }
    fclose(f);
    ck_assert_int_eq(n, size);
}

#ifndef _WIN32 /* writers in other processes, with fork; Windows below */
/* Half the block, then a byte to the pipe in ctx[0], then waits for a
 * byte on ctx[1] (or forever) before the rest. */
static int write_and_wait(int fd, void *ctx) {
    const int *pipes = ctx;
    unsigned char buf[4096] = {0};
    for (int i = 0; i < 8; i++) nd_write_all(fd, buf, sizeof buf);
    char c = 'w';
    ck_assert_int_eq(write(pipes[0], &c, 1), 1);
    if (pipes[1] < 0)
        for (;;) pause();
    ck_assert_int_eq(read(pipes[1], &c, 1), 1);
    for (int i = 0; i < 8; i++) nd_write_all(fd, buf, sizeof buf);
    return 0;
}

/* A child that starts writing path and stops half-way; returns its pid
 * once its temporary exists. go < 0: it never goes on. */
static pid_t start_writer(const char *path, int go) {
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int pipes[2] = {ready[1], go};
        _exit(nd_write_file_atomic(path, write_and_wait, pipes, NULL) == ND_OK ? 0 : 1);
    }
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    close(ready[1]);
    return pid;
}

START_TEST(killed_writers_leave_temporaries_the_next_save_removes) {
    make_dir();
    char path[600], other[600], decoy[600], files[1024];
    int temps;
    in_dir(path, sizeof path, "checkpoint.safetensors");
    unsigned char one = 1, two = 2;
    ck_assert_int_eq(nd_write_file_atomic(path, write_block, &one, NULL), ND_OK);
    /* names that only look like ours stay */
    const char *decoys[] = {"notes.tmp.123.0", "decoy.nanodiff-tmp.12x.0", "decoy.nanodiff-tmp.5.",
                            "decoy.nanodiff-tmp..3"};
    for (int i = 0; i < 4; i++) {
        FILE *f = fopen(in_dir(decoy, sizeof decoy, decoys[i]), "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
    }
    /* five saves at once, of this file and of another, killed half-way
     * (each writer, alive, keeps the others' temporaries) */
    pid_t pids[5];
    for (int k = 0; k < 5; k++)
        pids[k] = start_writer(k % 2 ? path : in_dir(other, sizeof other, "loss.csv"), -1);
    for (int k = 0; k < 5; k++) {
        ck_assert_int_eq(kill(pids[k], SIGKILL), 0);
        ck_assert_int_eq(waitpid(pids[k], NULL, 0), pids[k]);
    }
    listing(files, sizeof files, &temps);
    ck_assert_int_eq(temps, 5);
    assert_block(path, 1, 65536); /* the old file is whole */

    ck_assert_int_eq(nd_write_file_atomic(path, write_block, &two, NULL), ND_OK);
    ck_assert_str_eq(listing(files, sizeof files, &temps),
                     "checkpoint.safetensors decoy.nanodiff-tmp..3 decoy.nanodiff-tmp.12x.0 "
                     "decoy.nanodiff-tmp.5. notes.tmp.123.0");
    ck_assert_int_eq(temps, 0);
    assert_block(path, 2, 65536);
    remove_dir();
}
END_TEST

START_TEST(a_live_writer_keeps_its_temporary) {
    make_dir();
    char path[600], mine[600], files[1024];
    int temps, go[2];
    in_dir(path, sizeof path, "samples.npy");
    ck_assert_int_eq(pipe(go), 0);
    pid_t pid = start_writer(path, go[0]);
    /* another save into the folder while the child is half-way */
    unsigned char three = 3;
    ck_assert_int_eq(nd_write_file_atomic(in_dir(mine, sizeof mine, "loss.png"), write_block,
                                          &three, NULL),
                     ND_OK);
    listing(files, sizeof files, &temps);
    ck_assert_int_eq(temps, 1);
    char c = 'g';
    ck_assert_int_eq(write(go[1], &c, 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_str_eq(listing(files, sizeof files, &temps), "loss.png samples.npy");
    ck_assert_int_eq(temps, 0);
    assert_block(path, 0, 65536);
    close(go[0]);
    close(go[1]);
    remove_dir();
}
END_TEST

/* A temporary whose name's process is gone but whose lock another
 * process holds (a writer on another machine sharing the folder) stays
 * until the lock is free. */
START_TEST(a_locked_temporary_stays) {
    make_dir();
    char tmp[600], path[600], files[1024];
    int temps, ready[2], go[2];
    pid_t gone = fork(); /* a PID that no longer runs */
    ck_assert_int_ge(gone, 0);
    if (gone == 0) _exit(0);
    ck_assert_int_eq(waitpid(gone, NULL, 0), gone);
    char name[128];
    snprintf(name, sizeof name, "model.safetensors.nanodiff-tmp.%ld.0", (long)gone);
    in_dir(tmp, sizeof tmp, name);
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid_t holder = fork();
    ck_assert_int_ge(holder, 0);
    if (holder == 0) {
        int fd = open(tmp, O_RDWR | O_CREAT, 0644);
        struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        char c = 'l';
        if (fd < 0 || fcntl(fd, F_SETLK, &lock) != 0 || write(ready[1], &c, 1) != 1 ||
            read(go[0], &c, 1) != 1)
            _exit(1);
        _exit(0);
    }
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    unsigned char four = 4;
    in_dir(path, sizeof path, "model.safetensors");
    ck_assert_int_eq(nd_write_file_atomic(path, write_block, &four, NULL), ND_OK);
    listing(files, sizeof files, &temps);
    ck_assert_int_eq(temps, 1);
    ck_assert_int_eq(write(go[1], &c, 1), 1);
    int status;
    ck_assert_int_eq(waitpid(holder, &status, 0), holder);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(nd_write_file_atomic(path, write_block, &four, NULL), ND_OK);
    ck_assert_str_eq(listing(files, sizeof files, &temps), "model.safetensors");
    ck_assert_int_eq(temps, 0);
    for (int i = 0; i < 2; i++) {
        close(ready[i]);
        close(go[i]);
    }
    remove_dir();
}
END_TEST

/* A FIFO, a directory or a device is refused at once: opening a FIFO no
 * one writes must not wait for a writer. */
START_TEST(readers_refuse_what_is_not_a_regular_file) {
    make_dir();
    char fifo[600], want[700];
    ck_assert_int_eq(mkfifo(in_dir(fifo, sizeof fifo, "pipe"), 0644), 0);
    nd_error err;
    nd_safetensors st;
    nd_tensor *t = NULL;
    alarm(20); /* a reader that waits fails the test instead of hanging it */
    ck_assert_int_eq(nd_safetensors_load(fifo, &st, &err), ND_ERR);
    snprintf(want, sizeof want, "%s: not a regular file", fifo);
    ck_assert_str_eq(err.message, want);
    ck_assert_int_eq(nd_npy_load(fifo, &t, &err), ND_ERR);
    ck_assert_str_eq(err.message, want);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(nd_csv_load(fifo, &t, &err), ND_ERR);
    ck_assert_str_eq(err.message, want);
    ck_assert_int_eq(nd_safetensors_load("/dev/null", &st, &err), ND_ERR);
    ck_assert_str_eq(err.message, "/dev/null: not a regular file");
    ck_assert_int_eq(nd_safetensors_load(dir, &st, &err), ND_ERR);
    snprintf(want, sizeof want, "%s: cannot read: %s", dir, strerror(EISDIR));
    ck_assert_str_eq(err.message, want);
    alarm(0);
    remove_dir();
}
END_TEST

#else
/* Windows: a writer holds its temporary open, which bars deleting it; a
 * temporary of a process that is gone and that no one holds goes at the
 * next save. 99999999 is never a Windows PID (they are multiples of 4). */
START_TEST(stale_temporaries_go_held_ones_stay) {
    make_dir();
    char path[600], stale[600], held[600], decoy[600], files[1024];
    int temps;
    unsigned char one = 1, two = 2;
    in_dir(path, sizeof path, "checkpoint.safetensors");
    ck_assert_int_eq(nd_write_file_atomic(path, write_block, &one, NULL), ND_OK);
    ck_assert_int_eq(nd_write_file_atomic(path, write_block, &two, NULL), ND_OK);
    assert_block(path, 2, 65536); /* the second save replaced the first */
    FILE *f = fopen(in_dir(decoy, sizeof decoy, "decoy.nanodiff-tmp.12x.0"), "wb");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    f = fopen(in_dir(stale, sizeof stale, "checkpoint.safetensors.nanodiff-tmp.99999999.0"), "wb");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    int fd = _open(in_dir(held, sizeof held, "loss.csv.nanodiff-tmp.99999999.1"),
                   _O_CREAT | _O_RDWR | _O_BINARY, _S_IREAD | _S_IWRITE);
    ck_assert_int_ge(fd, 0);
    listing(files, sizeof files, &temps);
    ck_assert_int_eq(temps, 2);
    ck_assert_int_eq(nd_write_file_atomic(path, write_block, &one, NULL), ND_OK);
    ck_assert_str_eq(listing(files, sizeof files, &temps),
                     "checkpoint.safetensors decoy.nanodiff-tmp.12x.0");
    ck_assert_int_eq(temps, 1); /* the held one */
    ck_assert_int_eq(_close(fd), 0);
    ck_assert_int_eq(nd_write_file_atomic(path, write_block, &two, NULL), ND_OK);
    listing(files, sizeof files, &temps);
    ck_assert_int_eq(temps, 0);
    assert_block(path, 2, 65536);
    remove_dir();
}
END_TEST

/* A folder or a device is refused, with the reason. */
START_TEST(readers_refuse_what_is_not_a_regular_file) {
    make_dir();
    char want[700];
    nd_error err;
    nd_safetensors st;
    nd_tensor *t = NULL;
    ck_assert_int_eq(nd_safetensors_load("NUL", &st, &err), ND_ERR);
    ck_assert_str_eq(err.message, "NUL: not a regular file");
    ck_assert_int_eq(nd_npy_load("NUL", &t, &err), ND_ERR);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(nd_safetensors_load(dir, &st, &err), ND_ERR);
    snprintf(want, sizeof want, "%s: cannot read: %s", dir, strerror(EISDIR));
    ck_assert_str_eq(err.message, want);
    remove_dir();
}
END_TEST
#endif

TCase *tcase_file(void) {
    TCase *tc = nd_test_case("file");
#ifndef _WIN32
    tcase_add_test(tc, killed_writers_leave_temporaries_the_next_save_removes);
    tcase_add_test(tc, a_live_writer_keeps_its_temporary);
    tcase_add_test(tc, a_locked_temporary_stays);
#else
    tcase_add_test(tc, stale_temporaries_go_held_ones_stay);
#endif
    tcase_add_test(tc, readers_refuse_what_is_not_a_regular_file);
    return tc;
}
