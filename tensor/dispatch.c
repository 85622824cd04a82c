/* Choosing the kernel set: AVX2+FMA when the CPU has it and the OS saves
 * the YMM registers, NEON on aarch64, else the scalar twins. ND_KERNELS
 * (scalar, avx2, neon) overrides, for debugging and for comparing. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <unistd.h>
#endif

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

/* The sizes of a core's L1 data cache and L2 and of the last-level
 * cache, as the C library reports them (glibc reads them from cpuid),
 * else 32 KiB, 1 MiB and 32 MiB, common sizes of one core's L1d and L2
 * and of one die's L3. Atomic: workers may ask first, all find the same. */
static _Atomic int64_t cache_size[3];

static int cache_index(int level) { return level <= 1 ? 0 : level == 2 ? 1 : 2; }

void nd__set_cache_bytes(int level, int64_t bytes) {
    atomic_store_explicit(&cache_size[cache_index(level)], bytes, memory_order_relaxed);
}

int64_t nd__cache_bytes(int level) {
    static const int64_t fallback[3] = {32 << 10, 1 << 20, 32 << 20};
    int i = cache_index(level);
    int64_t known = atomic_load_explicit(&cache_size[i], memory_order_relaxed);
    if (known) return known;
    long got = -1;
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE) && \
    defined(_SC_LEVEL3_CACHE_SIZE)
    static const int name[3] = {_SC_LEVEL1_DCACHE_SIZE, _SC_LEVEL2_CACHE_SIZE,
                                _SC_LEVEL3_CACHE_SIZE};
    got = sysconf(name[i]);
#endif
    known = got > 0 ? (int64_t)got : fallback[i];
    atomic_store_explicit(&cache_size[i], known, memory_order_relaxed);
    return known;
}

static int64_t threshold = -1; /* -1: the cache sizes */

void nd__set_stream_threshold(int64_t bytes) { threshold = bytes; }

bool nd__prefetch_input(int64_t bytes) {
    return bytes > (threshold >= 0 ? threshold : nd__cache_bytes(2));
}

bool nd__stream_output(const nd_kernels *k, int64_t bytes) {
    return k->stream_copy && bytes > (threshold >= 0 ? threshold : nd__cache_bytes(3));
}
