/* Two kinds of error (see tensor.h): API misuse stops with one line;
 * outside-world failures are returned as ND_ERR with a message. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tensor.h"

static void default_hook(const char *message) {
    fprintf(stderr, "%s\n", message);
    fflush(stderr);
}

static nd_error_hook error_hook = default_hook;

nd_error_hook nd_set_error_hook(nd_error_hook hook) {
    nd_error_hook old = error_hook;
    error_hook = hook ? hook : default_hook;
    return old;
}

void nd_fatal(const char *op, const char *fmt, ...) {
    char message[1024];
    int n = snprintf(message, sizeof message, "nanodiff: %s: ", op);
    if (n < 0 || (size_t)n >= sizeof message) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message + n, sizeof message - (size_t)n, fmt, ap);
    va_end(ap);
    error_hook(message);
    exit(EXIT_FAILURE);
}

int nd_error_set(nd_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return ND_ERR;
}
