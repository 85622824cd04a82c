/* Safetensors files: bit-exact round trips, the exact bytes of a small
 * file, one clear message per defect of a corrupted file, bit flips and
 * truncations that must never crash, misuse of nd_safetensors_save, and
 * saves that fail without touching the old file. Every file lives in a
 * fresh directory under /tmp, removed at the end of the test. */
#include <errno.h>
#include <float.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/resource.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static char dir[300];
static char path_buf[4][512];

static void make_dir(void) {
    t_dir_make(dir, sizeof dir, "nd-safetensors");
}

static char *listing(char *out, size_t size) { return t_dir_listing(dir, out, size); }
static void remove_dir(void) { t_dir_remove(dir); }

/* dir/name, in one of four rotating buffers. */
static const char *in_dir(const char *name) {
    static int k;
    char *p = path_buf[k++ % 4];
    snprintf(p, sizeof path_buf[0], "%s/%s", dir, name);
    return p;
}

static void write_raw(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* The whole file into a malloc'd buffer. */
static unsigned char *read_raw(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
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

/* length (as given, little-endian) + header text + ndata zero bytes. */
static void write_st_len(const char *path, uint64_t length, const char *header,
                         size_t ndata) {
    size_t nh = strlen(header), n = 8 + nh + ndata;
    unsigned char *b = calloc(n, 1);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(length >> (8 * k));
    memcpy(b + 8, header, nh);
    write_raw(path, b, n);
    free(b);
}

static void write_st(const char *path, const char *header, size_t ndata) {
    write_st_len(path, strlen(header), header, ndata);
}

static void expect_load_error(const char *path, const char *what) {
    nd_safetensors st;
    memset(&st, 0xab, sizeof st);
    nd_error err = {{0}};
    char want[1024];
    snprintf(want, sizeof want, "%s: %s", path, what);
    ck_assert_int_eq(nd_safetensors_load(path, &st, &err), ND_ERR);
    ck_assert_msg(strcmp(err.message, want) == 0, "got      \"%s\"\nexpected \"%s\"",
                  err.message, want);
    ck_assert(st.n == 0 && st.names == NULL && st.tensors == NULL && st.nmeta == 0 &&
              st.meta_keys == NULL && st.meta_values == NULL);
}

static void load_ok(const char *path, nd_safetensors *st) {
    nd_error err = {{0}};
    int rc = nd_safetensors_load(path, st, &err);
    ck_assert_msg(rc == ND_OK, "load failed: %s", err.message);
}

static void save_ok(const char *path, const char *const *names,
                    const nd_tensor *const *ts, int n, const char *const *keys,
                    const char *const *values, int nmeta) {
    nd_error err = {{0}};
    int rc = nd_safetensors_save(path, names, ts, n, keys, values, nmeta, &err);
    ck_assert_msg(rc == ND_OK, "save failed: %s", err.message);
}

/* got is contiguous with want's shape and the same float bits, in
 * row-major order of want (any layout). */
static void assert_same_bits(const nd_tensor *got, const nd_tensor *want) {
    ck_assert(nd_same_shape(got, want));
    ck_assert(nd_is_contiguous(got));
    const float *g = nd_data(got);
    int64_t index[ND_MAX_DIMS];
    for (int64_t i = 0, n = nd_numel(want); i < n; i++) {
        t_unravel(i, want->shape, want->ndim, index);
        float w = nd_get(want, index);
        ck_assert_msg(memcmp(&w, &g[i], sizeof w) == 0, "element %lld differs",
                      (long long)i);
    }
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

START_TEST(test_st_round_trip) {
    make_dir();
    nd_tensor *cube = t_uniform(3, ND_SHAPE(2, 3, 4), -1.0f, 1.0f);
    const float special[] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f, FLT_MIN / 2,
                             from_bits(1), -from_bits(0x7fffff), FLT_MAX, -FLT_MAX,
                             from_bits(0x7fc12345), from_bits(0xffc00001)};
    const nd_tensor *ts[] = {
        nd_scalar(3.5f),
        nd_arange(0, 5, 1),
        cube,
        nd_permute(cube, ND_AXES(2, 0, 1)),
        nd_slice(cube, 2, 1, ND_END, 2),
        nd_expand(nd_arange(0, 3, 1), ND_SHAPE(2, 3)),
        nd_zeros(ND_SHAPE(3, 0, 2)),
        nd_from_buffer(special, ND_SHAPE(12)),
    };
    const char *names[] = {"scalar", "vector", "cube", "cube.permuted", "cube.sliced",
                           "expanded", "empty", "special \"quoted\" \\ ü 😀 \u65e5"};
    const char *keys[] = {"format", "quote\" back\\slash", "ключ", "", "tab"};
    const char *values[] = {"pt", "ctrl\x01\x1f end", "日本語 😀", "empty key",
                            "a\tb\nc\rd/e"};
    const char *path = in_dir("model.safetensors");
    save_ok(path, names, ts, 8, keys, values, 5);

    nd_safetensors st;
    load_ok(path, &st);
    ck_assert_int_eq(st.n, 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_str_eq(st.names[i], names[i]);
        ck_assert_ptr_eq(nd_safetensors_get(&st, names[i]), st.tensors[i]);
        ck_assert_ptr_null(st.tensors[i]->scope);
        assert_same_bits(st.tensors[i], ts[i]);
    }
    ck_assert_int_eq(st.nmeta, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_str_eq(st.meta_keys[i], keys[i]);
        ck_assert_str_eq(nd_safetensors_meta(&st, keys[i]), values[i]);
    }
    ck_assert_ptr_null(nd_safetensors_get(&st, "absent"));
    ck_assert_ptr_null(nd_safetensors_meta(&st, "absent"));
    nd_safetensors_free(&st);
    ck_assert(st.n == 0 && st.names == NULL && st.tensors == NULL && st.nmeta == 0);
    nd_safetensors_free(&st); /* a second free is harmless */
    remove_dir();
}
END_TEST

/* Saving over an existing file replaces it; no tensors and no metadata
 * make a valid file too. */
START_TEST(test_st_overwrite_and_empty) {
    make_dir();
    const char *path = in_dir("m.safetensors");
    const nd_tensor *a[] = {nd_ones(ND_SHAPE(4))};
    save_ok(path, (const char *[]){"a"}, a, 1, NULL, NULL, 0);
    save_ok(path, NULL, NULL, 0, NULL, NULL, 0);
    nd_safetensors st;
    load_ok(path, &st);
    ck_assert_int_eq(st.n, 0);
    ck_assert_int_eq(st.nmeta, 0);
    nd_safetensors_free(&st);
    size_t n;
    unsigned char *b = read_raw(path, &n);
    ck_assert_uint_eq(n, 16);
    ck_assert(memcmp(b, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
    free(b);
    char files[256];
    ck_assert_str_eq(listing(files, sizeof files), "m.safetensors");
    remove_dir();
}
END_TEST

/* The exact bytes: length, compact JSON (metadata first, then tensors in
 * the given order), spaces up to an 8-byte boundary, little-endian data. */
START_TEST(test_st_exact_bytes) {
    make_dir();
    const char *path = in_dir("small.safetensors");
    const nd_tensor *ts[] = {nd_from_buffer((const float[]){1.0f, -2.0f}, ND_SHAPE(2)),
                             nd_scalar(0.5f)};
    save_ok(path, (const char *[]){"a", "b\"\\"}, ts, 2, (const char *[]){"k"},
            (const char *[]){"v\n"}, 1);
    const char header[] =
        "{\"__metadata__\":{\"k\":\"v\\u000a\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\\\"\\\\\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]}}";
    size_t nh = sizeof header - 1; /* 142: padded to 144 so 8 + 144 is aligned */
    ck_assert_uint_eq(nh, 142);
    unsigned char want[8 + 144 + 12];
    memcpy(want, "\x90\0\0\0\0\0\0\0", 8);
    memcpy(want + 8, header, nh);
    memset(want + 8 + nh, ' ', 144 - nh);
    memcpy(want + 152, "\x00\x00\x80\x3f\x00\x00\x00\xc0\x00\x00\x00\x3f", 12);
    size_t n;
    unsigned char *got = read_raw(path, &n);
    ck_assert_uint_eq(n, sizeof want);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "byte %zu is 0x%02x, expected 0x%02x", i, got[i],
                      want[i]);
    free(got);
    remove_dir();
}
END_TEST

/* A hand-written file from another writer: spaces in the JSON, fields in
 * another order, trailing padding. */
START_TEST(test_st_foreign_file) {
    make_dir();
    const char *path = in_dir("foreign.safetensors");
    const char header[] = "{ \"w\" : { \"data_offsets\" : [ 0 , 8 ], \"shape\": [1, 2], "
                          "\"dtype\": \"F32\" }, \"__metadata__\": {} }   ";
    unsigned char b[8 + sizeof header - 1 + 8];
    size_t nh = sizeof header - 1;
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(nh >> (8 * k));
    memcpy(b + 8, header, nh);
    memcpy(b + 8 + nh, "\x00\x00\x40\x40\x00\x00\x80\xbf", 8); /* 3, -1 */
    write_raw(path, b, sizeof b);
    nd_safetensors st;
    load_ok(path, &st);
    ck_assert_int_eq(st.n, 1);
    ck_assert_int_eq(st.nmeta, 0);
    nd_tensor *w = nd_safetensors_get(&st, "w");
    ck_assert_int_eq(w->ndim, 2);
    ck_assert(nd_data(w)[0] == 3.0f && nd_data(w)[1] == -1.0f);
    nd_safetensors_free(&st);
    remove_dir();
}
END_TEST

/* Defects of the header and the layout, one file each: header text, data
 * bytes after it, and the message after "<path>: ". */
static const struct {
    const char *header;
    size_t ndata;
    const char *message;
} corrupt[] = {
    {"[1,2]", 0, "the header must be a JSON object, not an array"},
    {"{\"w\":{\"dtype\":\"F3", 0,
     "the header is not valid JSON: unterminated string at byte 17 of the header"},
    {"{\"w\" {}}", 0, "the header is not valid JSON: expected ':' at byte 5 of the header"},
    {"{\"w\":{},}", 0,
     "the header is not valid JSON: expected a string key at byte 8 of the header"},
    {"{} x", 0,
     "the header is not valid JSON: unexpected text after the JSON value at byte 3 of "
     "the header"},
    {"{\"a\\q\":1}", 0,
     "the header is not valid JSON: invalid escape in a string at byte 4 of the header"},
    {"{\"a\\u12G4\":1}", 0,
     "the header is not valid JSON: invalid \\u escape in a string at byte 4 of the "
     "header"},
    {"{\"a\\udc00\":1}", 0,
     "the header is not valid JSON: unpaired surrogate in a string at byte 4 of the "
     "header"},
    {"{\"a\\ud800x\":1}", 0,
     "the header is not valid JSON: unpaired surrogate in a string at byte 4 of the "
     "header"},
    {"{\"a\tb\":1}", 0,
     "the header is not valid JSON: control character 0x09 in a string at byte 3 of "
     "the header"},
    {"{\"\xff\":1}", 0,
     "the header is not valid JSON: invalid UTF-8 in a string at byte 2 of the header"},
    {"{\"\xc0\xaf\":1}", 0,
     "the header is not valid JSON: invalid UTF-8 in a string at byte 2 of the header"},
    {"{\"\xed\xa0\x80\":1}", 0,
     "the header is not valid JSON: invalid UTF-8 in a string at byte 2 of the header"},
    {"{\"a\":01}", 0,
     "the header is not valid JSON: expected ',' or '}' at byte 6 of the header"},
    {"{\"a\":tru}", 0,
     "the header is not valid JSON: unexpected character at byte 5 of the header"},
    {"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]"
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
     0, "the header is not valid JSON: nesting deeper than 64 levels at byte 68 of the "
        "header"},
    {"{\"w\":3}", 0, "tensor 'w': entry must be an object, not 3"},
    {"{\"w\":[]}", 0, "tensor 'w': entry must be an object, not an array"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor 'w': missing field 'data_offsets'"},
    {"{\"w\":{}}", 0, "tensor 'w': missing field 'dtype'"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
     "tensor 'w': unexpected field 'x'"},
    {"{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", 0,
     "tensor 'w': field 'dtype' appears twice"},
    {"{\"w\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': dtype must be a string, not 32"},
    {"{\"w\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': unknown dtype 'F33'"},
    {"{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': unknown dtype 'f32'"},
    {"{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': dtype F16 is not supported; nanodiff reads F32 only"},
    {"{\"w\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': dtype BF16 is not supported; nanodiff reads F32 only"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': shape must be an array, not 2"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': shape must hold non-negative integers, not -2"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': shape must hold non-negative integers, not 2.0"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': shape must hold non-negative integers, not 2e0"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': shape must hold non-negative integers, not a string"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': shape must hold non-negative integers, not null"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': shape has more than 8 dimensions"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,8]}}",
     8, "tensor 'w': shape value 9223372036854775808 is too large"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}",
     8, "tensor 'w': shape value 99999999999999999999 is too large"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
     8, "tensor 'w': shape [4294967296,4294967296] has too many elements"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[0,4294967296,4294967296],\"data_offsets\":[0,0]}}",
     0, "tensor 'w': shape [0,4294967296,4294967296] has too many elements"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
     "tensor 'w': data_offsets must be [begin, end]; it has 1 entry"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8,
     "tensor 'w': data_offsets must be [begin, end]; it has 3 entries"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{}}}", 8,
     "tensor 'w': data_offsets must be an array, not an object"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-1,7]}}", 8,
     "tensor 'w': data_offsets must hold non-negative integers, not -1"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 8,
     "tensor 'w': data_offsets must hold non-negative integers, not 8.5"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
     "tensor 'w': data_offsets [8,0] end before they begin"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
     "tensor 'w': data_offsets [0,16] reach past the end of the data section (8 bytes)"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12,
     "tensor 'w': data_offsets [0,12] hold 12 bytes; shape [2,2] of F32 needs 16"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     12, "tensors 'a' [0,8] and 'b' [4,12] overlap"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"z\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
     8, "tensors 'a' [0,8] and 'z' [4,8] overlap"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
     20, "bytes 8..12 of the data section belong to no tensor"},
    {"{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
     "bytes 0..4 of the data section belong to no tensor"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12,
     "bytes 8..12 of the data section, after the last tensor, belong to no tensor"},
    {"{}", 4, "bytes 0..4 of the data section, after the last tensor, belong to no tensor"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
     16, "key 'a' appears twice in the header"},
    {"{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "tensor name 'a' contains a NUL character (\\u0000)"},
    /* names the saver refuses are refused on loading too, so that what
     * loads can be saved again */
    {"{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "the name of tensor 0 is empty"},
    {"{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, "the name of tensor 1 contains the control character 0x0a"},
    {"{\"a\\u001fb\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "the name of tensor 0 contains the control character 0x1f"},
    {"{\"a\\u007f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "the name of tensor 0 contains the control character 0x7f"},
    /* strings of the file are quoted with their control characters as '?' */
    {"{\"__metadata__\":{\"k\\u001b[2J\\n\":5}}", 0,
     "__metadata__ value of 'k?[2J?' must be a string, not 5"},
    {"{\"ok\":{\"dtype\":\"F\\u001b32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     "tensor 'ok': unknown dtype 'F?32'"},
    {"{\"__metadata__\":\"x\"}", 0, "__metadata__ must be an object of strings, not a string"},
    {"{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value of 'k' must be a string, not 1"},
    {"{\"__metadata__\":{\"k\":{}}}", 0,
     "__metadata__ value of 'k' must be a string, not an object"},
    {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "__metadata__ key 'k' appears twice"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0,
     "key '__metadata__' appears twice in the header"},
    {"{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0,
     "__metadata__ value 'a' contains a NUL character (\\u0000)"},
};

START_TEST(test_st_corrupt_headers) {
    make_dir();
    for (size_t i = 0; i < sizeof corrupt / sizeof *corrupt; i++) {
        char name[32];
        snprintf(name, sizeof name, "corrupt%zu.safetensors", i);
        const char *path = in_dir(name);
        write_st(path, corrupt[i].header, corrupt[i].ndata);
        expect_load_error(path, corrupt[i].message);
    }
    remove_dir();
}
END_TEST

/* Defects of the file itself and of the header length. */
START_TEST(test_st_corrupt_files) {
    make_dir();
    const char *path = in_dir("f.safetensors");
    write_raw(path, "", 0);
    expect_load_error(path, "the file is empty");
    write_raw(path, "\x08\0\0\0\0", 5);
    expect_load_error(path, "the file is 5 bytes, too short for the 8-byte header length");
    write_st_len(path, 900, "{}", 110);
    expect_load_error(path, "header length 900 is larger than the rest of the file "
                            "(112 bytes)");
    write_st_len(path, UINT64_C(1) << 63, "{}", 0);
    expect_load_error(path, "header length 9223372036854775808 is larger than the rest "
                            "of the file (2 bytes)");
    write_st_len(path, UINT64_MAX, "{}", 0);
    expect_load_error(path, "header length 18446744073709551615 is larger than the rest "
                            "of the file (2 bytes)");
    write_st_len(path, 0, "{}", 0);
    expect_load_error(path, "the header is empty (length 0)");
    /* Truncated data: the header promises more than the file holds. */
    write_st(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 5);
    expect_load_error(path, "tensor 'w': data_offsets [0,8] reach past the end of the "
                            "data section (5 bytes)");
    /* A file with an embedded NUL after the JSON. */
    write_raw(path, "\x06\0\0\0\0\0\0\0{}\0   ", 14);
    expect_load_error(path, "the header is not valid JSON: unexpected text after the "
                            "JSON value at byte 2 of the header");
    /* A header over the 100 MB cap, in a sparse file, is refused before
     * it is read. */
    write_st_len(path, 100000001, "{}", 0);
    ck_assert_int_eq(truncate(path, 8 + 100000001 + 8), 0);
    expect_load_error(path, "header length 100000001 is over the limit of 100000000 bytes");
    expect_load_error(in_dir("missing.safetensors"), "cannot open: No such file or directory");
    expect_load_error(dir, "cannot read: Is a directory");
    remove_dir();
}
END_TEST

/* A small valid file: two tensors and metadata. */
static unsigned char *small_file(size_t *n) {
    const char *path = in_dir("small.safetensors");
    const nd_tensor *ts[] = {nd_from_buffer((const float[]){1, 2, 3, 4, 5, 6}, ND_SHAPE(2, 3)),
                             nd_scalar(-7.0f)};
    save_ok(path, (const char *[]){"w", "b"}, ts, 2, (const char *[]){"k"},
            (const char *[]){"v"}, 1);
    unsigned char *b = read_raw(path, n);
    unlink(path);
    return b;
}

/* Every single-bit flip and every truncation of a small file: loading
 * either succeeds or fails with a message (the sanitizer build checks that
 * nothing is read out of bounds); every truncation fails. */
START_TEST(test_st_fuzz) {
    make_dir();
    size_t n;
    unsigned char *good = small_file(&n);
    unsigned char *b = malloc(n);
    const char *path = in_dir("fuzz.safetensors");
    int loaded = 0, refused = 0;
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, good, n);
            b[i] ^= (unsigned char)(1u << bit);
            write_raw(path, b, n);
            nd_safetensors st;
            nd_error err = {{0}};
            if (nd_safetensors_load(path, &st, &err) == ND_OK) {
                loaded++;
                nd_safetensors_free(&st);
            } else {
                refused++;
                ck_assert_msg(strncmp(err.message, path, strlen(path)) == 0, "%s",
                              err.message);
                ck_assert(st.n == 0 && st.names == NULL && st.tensors == NULL);
            }
        }
    /* Flips in the data section load; most flips in the header do not. */
    ck_assert_int_ge(loaded, 8 * 28);
    ck_assert_int_ge(refused, 8 * 50);
    for (size_t len = 0; len < n; len++) {
        write_raw(path, good, len);
        nd_safetensors st;
        nd_error err = {{0}};
        ck_assert_msg(nd_safetensors_load(path, &st, &err) == ND_ERR,
                      "a file cut to %zu bytes loaded", len);
    }
    free(b);
    free(good);
    remove_dir();
}
END_TEST

START_TEST(test_st_save_misuse) {
    nd_tensor *x = nd_zeros(ND_SHAPE(2));
    const nd_tensor *ts[] = {x, x};
    const nd_tensor *t1[] = {x};
    const char *p = "/tmp/unused.safetensors";
#define SAVE_FATAL(call, what) EXPECT_FATAL(call, "nanodiff: safetensors_save: " what)
    SAVE_FATAL(nd_safetensors_save(NULL, (const char *[]){"a"}, t1, 1, NULL, NULL, 0, NULL),
               "path is NULL");
    SAVE_FATAL(nd_safetensors_save(p, NULL, NULL, -1, NULL, NULL, 0, NULL),
               "n is -1; it must be >= 0");
    SAVE_FATAL(nd_safetensors_save(p, NULL, NULL, 0, NULL, NULL, -2, NULL),
               "nmeta is -2; it must be >= 0");
    SAVE_FATAL(nd_safetensors_save(p, NULL, t1, 1, NULL, NULL, 0, NULL), "names is NULL");
    SAVE_FATAL(nd_safetensors_save(p, (const char *[]){"a"}, NULL, 1, NULL, NULL, 0, NULL),
               "tensors is NULL");
    SAVE_FATAL(nd_safetensors_save(p, (const char *[]){"a", "b"},
                                   (const nd_tensor *[]){x, NULL}, 2, NULL, NULL, 0, NULL),
               "tensor 1 ('b') is NULL");
    SAVE_FATAL(nd_safetensors_save(p, (const char *[]){"a", NULL}, ts, 2, NULL, NULL, 0, NULL),
               "name 1 is NULL");
    SAVE_FATAL(nd_safetensors_save(p, (const char *[]){"", "b"}, ts, 2, NULL, NULL, 0, NULL),
               "name 0 is empty");
    SAVE_FATAL(nd_safetensors_save(p, (const char *[]){"a", "b\nc"}, ts, 2, NULL, NULL, 0,
                                   NULL),
               "name 1 contains the control character 0x0a");
    SAVE_FATAL(nd_safetensors_save(p, (const char *[]){"a\x7f"}, t1, 1, NULL, NULL, 0, NULL),
               "name 0 contains the control character 0x7f");
    SAVE_FATAL(nd_safetensors_save(p, (const char *[]){"a\xff"}, t1, 1, NULL, NULL, 0, NULL),
               "name 0 is not valid UTF-8");
    SAVE_FATAL(nd_safetensors_save(p, (const char *[]){"__metadata__"}, t1, 1, NULL, NULL, 0,
                                   NULL),
               "name 0, '__metadata__', is reserved for the metadata");
    SAVE_FATAL(nd_safetensors_save(p, (const char *[]){"w", "w"}, ts, 2, NULL, NULL, 0, NULL),
               "name 'w' appears twice");
    SAVE_FATAL(nd_safetensors_save(p, NULL, NULL, 0, NULL, (const char *[]){"v"}, 1, NULL),
               "meta_keys is NULL");
    SAVE_FATAL(nd_safetensors_save(p, NULL, NULL, 0, (const char *[]){"k"}, NULL, 1, NULL),
               "meta_values is NULL");
    SAVE_FATAL(nd_safetensors_save(p, NULL, NULL, 0, (const char *[]){NULL},
                                   (const char *[]){"v"}, 1, NULL),
               "metadata key 0 is NULL");
    SAVE_FATAL(nd_safetensors_save(p, NULL, NULL, 0, (const char *[]){"k"},
                                   (const char *[]){NULL}, 1, NULL),
               "metadata value 0 is NULL");
    SAVE_FATAL(nd_safetensors_save(p, NULL, NULL, 0, (const char *[]){"k"},
                                   (const char *[]){"\xc3"}, 1, NULL),
               "metadata value 0 is not valid UTF-8");
    SAVE_FATAL(nd_safetensors_save(p, NULL, NULL, 0, (const char *[]){"k", "k"},
                                   (const char *[]){"1", "2"}, 2, NULL),
               "metadata key 'k' appears twice");
#undef SAVE_FATAL
    nd_safetensors st = {0};
    EXPECT_FATAL(nd_safetensors_load(NULL, &st, NULL),
                 "nanodiff: safetensors_load: path is NULL");
    EXPECT_FATAL(nd_safetensors_load(p, NULL, NULL), "nanodiff: safetensors_load: out is NULL");
    EXPECT_FATAL(nd_safetensors_get(NULL, "a"), "nanodiff: safetensors_get: st is NULL");
    EXPECT_FATAL(nd_safetensors_meta(&st, NULL), "nanodiff: safetensors_meta: key is NULL");
    ck_assert_int_eq(access(p, F_OK), -1);
}
END_TEST

/* The old file, with one tensor "a" of value v. */
static void assert_old_file(const char *path, float v) {
    nd_safetensors st;
    load_ok(path, &st);
    ck_assert_int_eq(st.n, 1);
    ck_assert_str_eq(st.names[0], "a");
    ck_assert(nd_data(st.tensors[0])[0] == v);
    nd_safetensors_free(&st);
}

START_TEST(test_st_save_failures) {
    make_dir();
    const char *path = in_dir("m.safetensors");
    const nd_tensor *a[] = {nd_full(ND_SHAPE(3), 1.5f)};
    const char *names[] = {"a"};
    save_ok(path, names, a, 1, NULL, NULL, 0);
    nd_error err;
    char want[1024], files[512];

#ifndef _WIN32 /* Windows has no file size limit to set */
    const nd_tensor *big[] = {nd_full(ND_SHAPE(10000), 2.5f)};
    /* A write that fails half-way (the file size limit; it stops root
     * too): the old file stays, the temporary goes. */
    struct rlimit old, small;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = nd_safetensors_save(path, names, big, 1, NULL, NULL, 0, &err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    ck_assert_int_eq(rc, ND_ERR);
    snprintf(want, sizeof want, "%s: cannot write the temporary file: %s", path,
             strerror(EFBIG));
    ck_assert_str_eq(err.message, want);
    assert_old_file(path, 1.5f);
    ck_assert_str_eq(listing(files, sizeof files), "m.safetensors");
#endif

    /* The target is a directory: the rename fails. */
    const char *sub = in_dir("sub");
    ck_assert_int_eq(t_mkdir(sub), 0);
    ck_assert_int_eq(nd_safetensors_save(sub, names, a, 1, NULL, NULL, 0, &err), ND_ERR);
    snprintf(want, sizeof want, "%s: cannot rename the temporary file: %s", sub,
             strerror(EISDIR));
    ck_assert_str_eq(err.message, want);
    struct stat st;
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));

    /* The directory does not exist. */
    const char *lost = in_dir("nowhere/m.safetensors");
    ck_assert_int_eq(nd_safetensors_save(lost, names, a, 1, NULL, NULL, 0, &err), ND_ERR);
    snprintf(want, sizeof want, "%s: cannot create a temporary file beside it: %s", lost,
             strerror(ENOENT));
    ck_assert_str_eq(err.message, want);

#ifndef _WIN32 /* a read-only folder on Windows still takes new files */
    /* A read-only directory stops only those who are not root. */
    if (geteuid() != 0) {
        ck_assert_int_eq(chmod(dir, 0555), 0);
        int rc = nd_safetensors_save(path, names, big, 1, NULL, NULL, 0, &err);
        ck_assert_int_eq(chmod(dir, 0755), 0);
        ck_assert_int_eq(rc, ND_ERR);
        snprintf(want, sizeof want, "%s: cannot create a temporary file beside it: %s",
                 path, strerror(EACCES));
        ck_assert_str_eq(err.message, want);
    }
#endif
    assert_old_file(path, 1.5f);
    ck_assert_str_eq(listing(files, sizeof files), "m.safetensors sub");
    /* NULL err is allowed: the return value alone says it failed. */
    ck_assert_int_eq(nd_safetensors_save(sub, names, a, 1, NULL, NULL, 0, NULL), ND_ERR);
    remove_dir();
}
END_TEST

TCase *tcase_safetensors(void) {
    TCase *tc = nd_test_case("safetensors");
    tcase_add_test(tc, test_st_round_trip);
    tcase_add_test(tc, test_st_overwrite_and_empty);
    tcase_add_test(tc, test_st_exact_bytes);
    tcase_add_test(tc, test_st_foreign_file);
    tcase_add_test(tc, test_st_corrupt_headers);
    tcase_add_test(tc, test_st_corrupt_files);
    tcase_add_test(tc, test_st_fuzz);
    tcase_add_test(tc, test_st_save_misuse);
    tcase_add_test(tc, test_st_save_failures);
    return tc;
}
