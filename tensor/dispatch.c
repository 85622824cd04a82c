/* Choosing the kernel set: AVX2+FMA when the CPU has it and the OS saves
 * the YMM registers, NEON on aarch64, else the scalar twins. ND_KERNELS
 * (scalar, avx2, neon) overrides, for debugging and for comparing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "kernels.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

bool nd__cpu_has_avx2_fma(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
    if (!(fma && osxsave && avx)) return false;
    /* XCR0 bits 1 and 2: the OS saves SSE and AVX (YMM) state. */
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    if ((xlo & 6u) != 6u) return false;
    if (__get_cpuid_max(0, NULL) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    return b & (1u << 5); /* AVX2 */
}
#elif defined(__x86_64__) || defined(_M_X64)
bool nd__cpu_has_avx2_fma(void) { return false; } /* no cpuid without GNU C */
#endif

static const nd_kernels *best(void) {
#if defined(__x86_64__) || defined(_M_X64)
    if (nd__cpu_has_avx2_fma()) return &nd__kernels_avx2;
#elif defined(__aarch64__)
    return &nd__kernels_neon;
#endif
    return &nd__kernels_scalar;
}

static const nd_kernels *lookup(const char *name) {
    if (!strcmp(name, "scalar")) return &nd__kernels_scalar;
#if defined(__x86_64__) || defined(_M_X64)
    if (!strcmp(name, "avx2")) return nd__cpu_has_avx2_fma() ? &nd__kernels_avx2 : NULL;
#endif
#if defined(__aarch64__)
    if (!strcmp(name, "neon")) return &nd__kernels_neon;
#endif
    return NULL;
}

static const nd_kernels *active;

const nd_kernels *nd__kernels(void) {
    if (active) return active;
    active = best();
    const char *env = getenv("ND_KERNELS");
    if (env && *env) {
        const nd_kernels *k = lookup(env);
        if (k) active = k;
        else
            fprintf(stderr, "nanodiff: ND_KERNELS='%s' is not available here "
                    "(have: scalar, %s); using %s\n", env, active->name, active->name);
    }
    return active;
}

const char *nd_kernels_name(void) { return nd__kernels()->name; }

int nd_set_kernels(const char *name, nd_error *err) {
    if (!name) return nd_error_set(err, "kernel set name is NULL");
    const nd_kernels *k = lookup(name);
    if (!k) return nd_error_set(err, "kernel set '%s' is not available on this CPU "
                                "(have: scalar, %s)", name, best()->name);
    active = k;
    return ND_OK;
}

/* The last-level cache's size, as the C library reports it (glibc reads
 * it from cpuid), else 32 MiB, a common L3 of one die. */
static int64_t llc_bytes(void) {
    static int64_t bytes;
    if (bytes) return bytes;
    long l3 = -1;
#if defined(_SC_LEVEL3_CACHE_SIZE)
    l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    bytes = l3 > 0 ? (int64_t)l3 : (int64_t)32 << 20;
    return bytes;
}

static int64_t stream_threshold = -1; /* -1: the last-level cache */

void nd__set_stream_threshold(int64_t bytes) { stream_threshold = bytes; }

bool nd__stream_output(const nd_kernels *k, int64_t bytes) {
    int64_t t = stream_threshold >= 0 ? stream_threshold : llc_bytes();
    return k->stream_copy && bytes > t;
}
