/* What the fuzz targets share (fuzz/common.c): failing with a message,
 * the temporary files readers of paths read, the leak check through
 * nd_mem_live, and the small model the checkpoint target and the seed
 * maker both use.
 *
 * A target fails by abort(), which libFuzzer reports as a crash with the
 * input that caused it: a check of ours that does not hold (FZ_CHECK),
 * nd_fatal reached from a reader (the error hook aborts instead of
 * exiting), or a sanitizer's report. */
#ifndef NANODIFF_FUZZ_H
#define NANODIFF_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "nn/nn.h"

#if defined(__GNUC__) || defined(__clang__)
#define FZ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FZ_PRINTF(a, b)
#endif

/* Prints "fuzz: <file>:<line>: <message>" and aborts. */
_Noreturn void fz_fail(const char *file, int line, const char *fmt, ...) FZ_PRINTF(3, 4);
#define FZ_CHECK(cond, ...)                                                    \
    do {                                                                       \
        if (!(cond)) fz_fail(__FILE__, __LINE__, __VA_ARGS__);                 \
    } while (0)

/* Once per process (every call after the first does nothing): the error
 * hook that turns nd_fatal into an abort, and a private directory for the
 * files (under $ND_FUZZ_TMPDIR, else /dev/shm, else $TMPDIR or /tmp),
 * removed at exit. */
void fz_init(void);
/* The path of file slot k (0..7) in that directory; slot files are made
 * once and reused. */
const char *fz_path(int slot);
/* Makes the file of slot k hold exactly data[0..n) (ftruncate + pwrite on
 * a descriptor kept open); returns its path. */
const char *fz_write(int slot, const void *data, size_t n);
/* Removes whatever is at the path of slot k (for files a writer renamed
 * into place). */
void fz_remove(int slot);

/* The reader's result must be ND_OK, or ND_ERR with a message that is
 * terminated inside the buffer, not empty, and (when path is not NULL)
 * names the file. what names the call in the failure message. */
void fz_check_result(const char *what, int rc, const nd_error *err, const char *path);

/* nd_mem_live() when an input starts, and the check that it is back there
 * when the input is done (no tensor or buffer of the library left). */
size_t fz_mem_begin(void);
void fz_mem_end(size_t base, const char *what);

/* Little-endian words, whatever the host. */
uint64_t fz_le64(const unsigned char *p);
uint32_t fz_le32(const unsigned char *p);
void fz_put_le64(unsigned char *p, uint64_t v);
void fz_put_le32(unsigned char *p, uint32_t v);

/* ---- the checkpoint target's model --------------------------------------
 *
 * A Sequential of Linear(2, 3) ("0.weight", "0.bias") and Linear(3, 1)
 * without bias ("1.weight"), its parameters from a fixed seed: small, so
 * that a checkpoint of it with an optimizer and an EMA is about 1.5 KB. */
typedef struct fz_model {
    nd_module *model;
    nd_optimizer *adamw;  /* over model */
    nd_optimizer *sgd;    /* SGD with momentum over model (another kind of state) */
    nd_ema *ema;
    nd_rng rng;
} fz_model;
/* Made with state that is not all zeros: two steps of each optimizer and
 * EMA updates on a fixed loss; the same bits every time. */
void fz_model_new(fz_model *m);
void fz_model_free(fz_model *m);
/* The EMA decay fz_model_new uses. */
#define FZ_EMA_DECAY 0.999

#endif
