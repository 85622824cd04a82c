/* Private to the two safetensors files of tensor/ (safetensors_read.c,
 * safetensors_write.c): the format they share. Not installed.
 *
 * Safetensors files (Hugging Face's format, read by PyTorch, JAX, NumPy):
 *
 *   u64 little-endian N | N bytes of JSON header | data section
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets"}
 * (byte range in the data section, end exclusive) and may hold a
 * "__metadata__" object of strings; the tensors must cover the data
 * section exactly. Data is raw little-endian, row-major. */
#ifndef NANODIFF_TENSOR_SAFETENSORS_H
#define NANODIFF_TENSOR_SAFETENSORS_H

/* The header's key for the metadata, never a tensor's name. */
#define META_KEY "__metadata__"

#include <stdbool.h>
#include <stddef.h>

/* Whether s may name a tensor in a file nanodiff writes and reads: not
 * empty, no control character (U+0000-U+001F, U+007F), valid UTF-8. If
 * not, why in why ("is empty", ...). Loading refuses what saving would,
 * so that whatever loads can be saved again. (safetensors_read.c) */
bool nd__safetensors_name_ok(const char *s, char *why, size_t size);

#endif
