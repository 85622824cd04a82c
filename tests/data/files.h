/* Files for the data tests: a fresh directory under /tmp per test, raw
 * reads and writes, a listing (to see that no temporary file is left),
 * and a check of an error message. */
#ifndef NANODIFF_TEST_DATA_FILES_H
#define NANODIFF_TEST_DATA_FILES_H

#include <stddef.h>

#include "data/data.h"
#include "helpers.h"

void td_make_dir(void);
void td_remove_dir(void); /* and everything in it */
const char *td_dir(void);
/* dir/name, in one of eight rotating buffers. */
const char *td_path(const char *name);
void td_write(const char *path, const void *bytes, size_t n);
/* The whole file (malloc'd; free it). */
unsigned char *td_read(const char *path, size_t *n);
/* The names in the directory, sorted, separated by spaces. */
const char *td_listing(void);
/* err holds exactly "<path>: <what>" (path NULL: exactly what). */
void td_expect(const nd_error *err, const char *path, const char *what);
/* A deterministic byte generator for fuzzing: xorshift32. */
uint32_t td_rand(uint32_t *state);
/* gzip (RFC 1952, no optional fields) around data, made with nd_deflate:
 * malloc'd, *n its size. */
unsigned char *td_gzip(const void *data, size_t size, int level, size_t *n);

#endif
