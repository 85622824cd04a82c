/* What nanodiff asks of the operating system, on POSIX systems (Linux,
 * macOS, the BSDs): files, processes and the CPU count. tensor/os_windows.c
 * answers the same calls on Windows; the rest of the library is the same
 * C on both. */
#if defined(__APPLE__)
/* The CPU count and F_FULLFSYNC are Darwin extensions, hidden in strict
 * POSIX mode. */
#define _DARWIN_C_SOURCE
#elif defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
/* There, _POSIX_C_SOURCE hides _SC_NPROCESSORS_ONLN; with no feature macro
 * the whole system API is visible. */
#undef _POSIX_C_SOURCE
#endif

#ifndef _WIN32
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int nd__os_open_read(const char *path) {
    /* O_NONBLOCK: opening a FIFO with no writer would wait for one */
    return open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
}

int nd__os_set_blocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) return errno;
    return 0;
}

/* An fcntl lock, which the system drops when the process ends, on
 * whatever machine shares the folder. */
static int lock_file(int fd) {
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    return fcntl(fd, F_SETLK, &lock);
}

int nd__os_create_locked(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    /* without locks (some network file systems) the PID in the name still
     * guards it on this machine */
    if (fd >= 0) (void)lock_file(fd);
    return fd;
}

int nd__os_sync(int fd) {
#ifdef F_FULLFSYNC
    /* macOS: fsync reaches the drive but not past its cache */
    if (fcntl(fd, F_FULLFSYNC) == 0) return 0;
#endif
    return fsync(fd) == 0 ? 0 : errno;
}

int nd__os_replace(const char *from, const char *to) { return rename(from, to) == 0 ? 0 : errno; }

void nd__os_sync_folder(const char *dir) {
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

long nd__os_pid(void) { return (long)getpid(); }

bool nd__os_process_alive(long pid) {
    /* EPERM: it exists, as another user's */
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

void nd__os_remove_unheld(const char *path) {
    int fd = open(path, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && lock_file(fd) == 0) unlink(path);
    close(fd);
}

void nd__os_list(const char *dir, void (*fn)(void *ctx, const char *name), void *ctx) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) fn(ctx, e->d_name);
    closedir(d);
}

int nd__os_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 4096 ? 4096 : (int)n;
}
#else
typedef int nd__os_posix_unused; /* ISO C: a translation unit declares something */
#endif
