/* What nanodiff asks of the operating system, on Windows: the calls of
 * tensor/os_posix.c with the C runtime's file descriptors and Win32.
 * Every file is opened in binary mode: text mode would turn each 0x0A byte
 * of a checkpoint into two. */
#ifdef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <windows.h>

#include "internal.h"

int nd__os_open_read(const char *path) {
    /* no FIFOs to wait on: a named pipe is not a regular file, and the
     * caller refuses it after fstat */
    DWORD attr = GetFileAttributesA(path);
    if (attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY)) {
        errno = EISDIR; /* _open would say only "Permission denied" */
        return -1;
    }
    return _open(path, _O_RDONLY | _O_BINARY | _O_NOINHERIT);
}

int nd__os_set_blocking(int fd) {
    (void)fd;
    return 0;
}

/* The C runtime opens without FILE_SHARE_DELETE: while the writer holds
 * the file open, no other process can delete it, which is the lock. */
int nd__os_create_locked(const char *path) {
    return _open(path, _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY | _O_NOINHERIT,
                 _S_IREAD | _S_IWRITE);
}

int nd__os_sync(int fd) { return _commit(fd) == 0 ? 0 : errno; }

/* The Win32 error of a failed call as the nearest errno value, for the
 * messages, which use strerror. */
static int errno_of(DWORD e) {
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
        return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
        return EACCES;
    case ERROR_NOT_SAME_DEVICE:
        return EXDEV;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        return ENOSPC;
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS:
        return EEXIST;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return ENOMEM;
    default:
        return EIO;
    }
}

/* rename() fails on Windows when the target exists; MoveFileEx replaces
 * it in one step, and WRITE_THROUGH returns only once the move is on
 * disk (what fsync of the folder does on POSIX). */
int nd__os_replace(const char *from, const char *to) {
    if (MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) return 0;
    DWORD e = GetLastError(), attr = GetFileAttributesA(to);
    /* over a folder: "Access is denied" would not say why */
    if (attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY)) return EISDIR;
    return errno_of(e);
}

void nd__os_sync_folder(const char *dir) { (void)dir; }

long nd__os_pid(void) { return (long)_getpid(); }

bool nd__os_process_alive(long pid) {
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    if (!h) return GetLastError() == ERROR_ACCESS_DENIED; /* another user's */
    DWORD code = 0;
    bool alive = GetExitCodeProcess(h, &code) && code == STILL_ACTIVE;
    CloseHandle(h);
    return alive;
}

/* Fails with a sharing violation while a writer holds the file open. */
void nd__os_remove_unheld(const char *path) {
    DWORD attr = GetFileAttributesA(path);
    if (attr == INVALID_FILE_ATTRIBUTES ||
        (attr & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)))
        return;
    (void)DeleteFileA(path);
}

void nd__os_list(const char *dir, void (*fn)(void *ctx, const char *name), void *ctx) {
    size_t n = strlen(dir);
    char *pattern = malloc(n + 3);
    if (!pattern) return;
    memcpy(pattern, dir, n);
    memcpy(pattern + n, "\\*", 3);
    WIN32_FIND_DATAA e;
    HANDLE h = FindFirstFileA(pattern, &e);
    free(pattern);
    if (h == INVALID_HANDLE_VALUE) return;
    do fn(ctx, e.cFileName);
    while (FindNextFileA(h, &e));
    FindClose(h);
}

int nd__os_cpu_count(void) {
    DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    return n < 1 ? 1 : n > 4096 ? 4096 : (int)n;
}
#else
typedef int nd__os_windows_unused; /* ISO C: a translation unit declares something */
#endif
