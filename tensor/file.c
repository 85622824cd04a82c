/* Writing a file so that a crash or an error never leaves it broken: the
 * bytes go to a temporary file beside the target, which is fsync'd and
 * renamed over it (rename is atomic within a file system), then the
 * directory is fsync'd so that the rename itself lasts. The target is
 * always either the old file or the complete new one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* A new file beside path, opened for writing; its name in *tmp (malloc'd,
 * NULL when even that failed). */
static int create_temporary(const char *path, char **tmp) {
    static unsigned counter;
    size_t size = strlen(path) + 48;
    *tmp = malloc(size);
    if (!*tmp) {
        errno = ENOMEM;
        return -1;
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(*tmp, size, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
        int fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

/* Makes the rename durable. Best effort: by now path already holds the
 * new file, so a failure here cannot be reported as "nothing changed". */
static void sync_directory(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (slash == path) n = 1; /* a file in "/" */
    char *dir = malloc(n + 1);
    if (!dir) return;
    if (slash) memcpy(dir, path, n);
    else dir[0] = '.';
    dir[n] = 0;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int nd_write_file_atomic(const char *path, nd_write_fn write, void *ctx, nd_error *err) {
    if (!path || !write) nd_fatal("write_file_atomic", "path or writer is NULL");
    char *tmp = NULL;
    int fd = create_temporary(path, &tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return nd_error_set(err, "%s: cannot create a temporary file beside it: %s", path,
                            strerror(e));
    }
    int e = write(fd, ctx);
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    const char *what = "write";
    if (!e && rename(tmp, path) != 0) {
        e = errno;
        what = "rename";
    }
    if (e) {
        unlink(tmp);
        free(tmp);
        return nd_error_set(err, "%s: cannot %s the temporary file: %s", path, what,
                            strerror(e));
    }
    free(tmp);
    sync_directory(path);
    return ND_OK;
}

int nd_write_all(int fd, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return errno;
        if (k == 0) return EIO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}
