/* Paths, folders, and samples as pictures, for the commands. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _WIN32
#include <direct.h>
#include <io.h>
#include <sys/locking.h>
#else
#include <unistd.h>
#endif

#include "cli.h"

int cli_fail(const char *cmd, const nd_error *err) {
    fprintf(stderr, "nanodiff %s: %s\n", cmd, err->message);
    return 1;
}

int cli_path(char *buf, size_t size, const char *dir, const char *name, nd_error *err) {
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return nd_error_set(err, "the path %s/%s is too long", dir, name);
    return ND_OK;
}

bool cli_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int cli_mkdir(const char *dir, nd_error *err) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return ND_OK;
        return nd_error_set(err, "%s is a file, not a folder", dir);
    }
#ifdef _WIN32
    int made = _mkdir(dir);
#else
    int made = mkdir(dir, 0777);
#endif
    if (made != 0)
        return nd_error_set(err, "cannot make the folder %s: %s", dir, strerror(errno));
    return ND_OK;
}

int cli_checkpoint_path(const char *arg, char *buf, size_t size, nd_error *err) {
    struct stat st;
    if (stat(arg, &st) != 0) return nd_error_set(err, "%s: %s", arg, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        if ((size_t)snprintf(buf, size, "%s", arg) >= size)
            return nd_error_set(err, "the path %s is too long", arg);
        return ND_OK;
    }
    if (cli_path(buf, size, arg, CLI_CHECKPOINT, err) != ND_OK) return ND_ERR;
    if (!cli_exists(buf)) return nd_error_set(err, "%s holds no %s", arg, CLI_CHECKPOINT);
    return ND_OK;
}

void cli_default_dir(const char *ckpt, const char *out, char *dir, size_t size) {
    if (out[0]) {
        snprintf(dir, size, "%s", out);
        return;
    }
    snprintf(dir, size, "%s", ckpt);
    char *slash = strrchr(dir, '/');
#ifdef _WIN32
    char *back = strrchr(dir, '\\');
    if (back && (!slash || back > slash)) slash = back;
#endif
    if (slash)
        *slash = 0;
    else
        snprintf(dir, size, ".");
}

int cli_lock_run(const char *dir, int *fd, nd_error *err) {
    char path[1100];
    if (cli_path(path, sizeof path, dir, ".lock", err) != ND_OK) return ND_ERR;
#ifdef _WIN32
    *fd = _open(path, _O_RDWR | _O_CREAT | _O_BINARY | _O_NOINHERIT, _S_IREAD | _S_IWRITE);
#else
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
#endif
    if (*fd < 0) return nd_error_set(err, "%s: %s", path, strerror(errno));
    /* a lock that the system drops when the process ends, however */
#ifdef _WIN32
    int locked = _locking(*fd, _LK_NBLCK, 1);
#else
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int locked = fcntl(*fd, F_SETLK, &l);
#endif
    if (locked != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        if (e == EACCES || e == EAGAIN)
            return nd_error_set(err, "%s is in use by another nanodiff train", dir);
        return nd_error_set(err, "%s: cannot lock: %s", path, strerror(e));
    }
    /* temporaries a killed run left go at the next write into dir
     * (nd_write_file_atomic) */
    return ND_OK;
}
