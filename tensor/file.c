/* Writing a file so that a crash or an error never leaves it broken: the
 * bytes go to a temporary file beside the target, which is fsync'd and
 * renamed over it (rename is atomic within a file system), then the
 * directory is fsync'd so that the rename itself lasts. The target is
 * always either the old file or the complete new one.
 *
 * A process killed while it writes leaves its temporary behind. They are
 * named NAME.nanodiff-tmp.PID.N, and the writer holds an fcntl lock on
 * its own from creation to rename; the next write into the folder
 * removes every temporary whose process is gone and whose lock is free
 * (the system drops a lock when its process ends, on whatever machine
 * shares the folder), and never one that a live writer holds. The calls
 * to the system are in tensor/os_posix.c and tensor/os_windows.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif

#include "internal.h"

#define TMP_MARK ".nanodiff-tmp."

/* The folder of path, malloc'd ("." for a bare name, "/" for a file in
 * "/"), or NULL without memory. */
static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
#ifdef _WIN32
    const char *back = strrchr(path, '\\');
    if (back && (!slash || back > slash)) slash = back;
#endif
    size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir) return NULL;
    if (slash) memcpy(dir, path, n);
    else dir[0] = '.';
    dir[n] = 0;
    return dir;
}

/* The PID of a temporary's name (NAME.nanodiff-tmp.PID.N), or 0 if the
 * name is not one. */
static long temporary_pid(const char *name) {
    const char *mark = strstr(name, TMP_MARK);
    if (!mark || mark == name) return 0;
    const char *p = mark + strlen(TMP_MARK);
    long pid = 0;
    for (; *p >= '0' && *p <= '9' && pid < 100000000; p++) pid = 10 * pid + (*p - '0');
    if (*p != '.' || pid <= 0) return 0;
    for (p++; *p >= '0' && *p <= '9'; p++) {}
    return *p == 0 && p[-1] != '.' ? pid : 0;
}

struct sweep {
    const char *dir;
    long self;
};

static void remove_if_stale(void *ctx, const char *name) {
    const struct sweep *w = ctx;
    long pid = temporary_pid(name);
    if (pid == 0 || pid == w->self || nd__os_process_alive(pid)) return;
    size_t size = strlen(w->dir) + strlen(name) + 2;
    char *full = malloc(size);
    if (!full) return;
    snprintf(full, size, "%s/%s", w->dir, name);
    nd__os_remove_unheld(full);
    free(full);
}

/* Removes the stale temporaries of dir: best effort, errors ignored. */
static void remove_stale_temporaries(const char *dir) {
    struct sweep w = {dir, nd__os_pid()};
    nd__os_list(dir, remove_if_stale, &w);
}

/* A new file beside path, opened for writing and held; its name in *tmp
 * (malloc'd, NULL when even that failed). */
static int create_temporary(const char *path, char **tmp) {
    static unsigned counter;
    size_t size = strlen(path) + 64;
    *tmp = malloc(size);
    if (!*tmp) {
        errno = ENOMEM;
        return -1;
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(*tmp, size, "%s" TMP_MARK "%ld.%u", path, nd__os_pid(), counter++);
        int fd = nd__os_create_locked(*tmp);
        if (fd >= 0) return fd;
        if (errno != EEXIST) return -1;
    }
    return -1;
}

/* Makes the rename durable. Best effort: by now path already holds the
 * new file, so a failure here cannot be reported as "nothing changed". */
static void sync_directory(const char *path) {
    char *dir = folder_of(path);
    if (!dir) return;
    nd__os_sync_folder(dir);
    free(dir);
}

int nd_write_file_atomic(const char *path, nd_write_fn write, void *ctx, nd_error *err) {
    if (!path || !write) nd_fatal("write_file_atomic", "path or writer is NULL");
    char *dir = folder_of(path);
    if (dir) remove_stale_temporaries(dir);
    free(dir);
    char *tmp = NULL;
    int fd = create_temporary(path, &tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return nd_error_set(err, "%s: cannot create a temporary file beside it: %s", path,
                            strerror(e));
    }
    int e = write(fd, ctx);
    if (!e) e = nd__os_sync(fd);
    if (close(fd) != 0 && !e) e = errno;
    const char *what = "write";
    if (!e && (e = nd__os_replace(tmp, path)) != 0) what = "rename";
    if (e) {
        remove(tmp);
        free(tmp);
        return nd_error_set(err, "%s: cannot %s the temporary file: %s", path, what,
                            strerror(e));
    }
    free(tmp);
    sync_directory(path);
    return ND_OK;
}

int nd__open_regular(const char *path, int *fd, uint64_t *size, nd_error *err) {
    *fd = nd__os_open_read(path);
    /* (Windows cannot open a folder: EISDIR comes from here there) */
    if (*fd < 0)
        return nd_error_set(err, "%s: cannot %s: %s", path, errno == EISDIR ? "read" : "open",
                            strerror(errno));
    struct stat st;
    int rc = ND_OK, e;
    if (fstat(*fd, &st) != 0)
        rc = nd_error_set(err, "%s: cannot read: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = nd_error_set(err, "%s: cannot read: %s", path, strerror(EISDIR));
    else if (!S_ISREG(st.st_mode))
        rc = nd_error_set(err, "%s: not a regular file", path);
    else if ((e = nd__os_set_blocking(*fd)) != 0)
        rc = nd_error_set(err, "%s: cannot read: %s", path, strerror(e));
    if (rc) {
        close(*fd);
        *fd = -1;
        return rc;
    }
    *size = (uint64_t)st.st_size;
    return ND_OK;
}

int nd_write_all(int fd, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    while (n > 0) {
        ssize_t k = write(fd, p, n < ND_IO_CHUNK ? n : ND_IO_CHUNK);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return errno;
        if (k == 0) return EIO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}
