#include "files.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[300];
static char paths[8][600];
static char names[4096];

void td_make_dir(void) {
    t_dir_make(dir, sizeof dir, "nd-data");
}

const char *td_dir(void) { return dir; }

const char *td_path(const char *name) {
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

static void remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        ck_assert_int_eq(unlink(path), 0);
        return;
    }
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            remove_tree(p);
        }
    closedir(d);
    ck_assert_int_eq(rmdir(path), 0);
}

void td_remove_dir(void) { remove_tree(dir); }

void td_write(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

unsigned char *td_read(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    unsigned char *b = malloc((size_t)size + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return b;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

const char *td_listing(void) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char *list[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && n < 64)
            list[n++] = strdup(e->d_name);
    closedir(d);
    qsort(list, (size_t)n, sizeof *list, compare_names);
    names[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i) strncat(names, " ", sizeof names - strlen(names) - 1);
        strncat(names, list[i], sizeof names - strlen(names) - 1);
        free(list[i]);
    }
    return names;
}

void td_expect(const nd_error *err, const char *path, const char *what) {
    char want[1024];
    if (path) snprintf(want, sizeof want, "%s: %s", path, what);
    else snprintf(want, sizeof want, "%s", what);
    ck_assert_msg(strcmp(err->message, want) == 0, "got      \"%s\"\nexpected \"%s\"",
                  err->message, want);
}

uint32_t td_rand(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

unsigned char *td_gzip(const void *data, size_t size, int level, size_t *n) {
    nd_bytes z = {0};
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    nd_deflate(data, size, level, &z);
    *n = 10 + z.size + 8;
    unsigned char *b = malloc(*n);
    memcpy(b, head, 10);
    memcpy(b + 10, z.data, z.size);
    uint32_t crc = nd_crc32(ND_CRC32_INIT, data, size), len = (uint32_t)size;
    for (int k = 0; k < 4; k++) {
        b[10 + z.size + k] = (unsigned char)(crc >> (8 * k));
        b[14 + z.size + k] = (unsigned char)(len >> (8 * k));
    }
    nd_bytes_free(&z);
    return b;
}
