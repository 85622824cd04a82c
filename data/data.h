/* nanodiff data layer: data in, pictures out.
 *
 * Readers for training data (Fashion-MNIST / MNIST IDX files, plain or
 * gzip; CIFAR-10 binary batches; CSV files of points; NumPy .npy arrays)
 * and writers for results (PNG images, grids and plots, NumPy .npy
 * arrays), with the codecs they need (CRC-32, Adler-32, DEFLATE decoding
 * and encoding, gzip), all in plain C over libc. The layer uses the
 * tensor layer only.
 *
 * Conventions (those of the tensor layer)
 *   - Anything read from outside (files, bytes given to a decoder) never
 *     stops the program: functions return ND_OK or ND_ERR and fill an
 *     nd_error whose message names the file and what is wrong. They never
 *     read or write out of bounds, whatever the input.
 *   - Misuse of the API (NULL pointers, a tensor of the wrong shape) stops
 *     with one line "nanodiff: <function>: <what is wrong>".
 *   - Loaded tensors are created outside every scope, like those of
 *     nd_safetensors_load: they belong to the caller until nd_free (or
 *     nd_dataset_free), whatever scope is open.
 *   - Writers go through a temporary file beside the target that is
 *     fsync'd and renamed over it: on ND_ERR the old file is as it was and
 *     no temporary file is left.
 *   - Pixels become floats in [-1, 1] as x / 127.5 - 1 (0 -> -1, 255 -> 1)
 *     and go back as uint8 = clip((x + 1) * 127.5, 0, 255) rounded to the
 *     nearest integer, halves up (0 -> 128; NaN -> 0).
 */
#ifndef NANODIFF_DATA_H
#define NANODIFF_DATA_H

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- checksums --------------------------------------------------------- */

/* CRC-32 of zlib, gzip and PNG (ISO-HDLC: reflected polynomial 0xEDB88320,
 * initial and final complement inside), continued over buf: start from
 * ND_CRC32_INIT and feed the data in pieces of any size. */
#define ND_CRC32_INIT 0u
uint32_t nd_crc32(uint32_t crc, const void *buf, size_t n);
/* Adler-32 of zlib (RFC 1950 section 8.2), continued the same way. */
#define ND_ADLER32_INIT 1u
uint32_t nd_adler32(uint32_t adler, const void *buf, size_t n);

/* ---- DEFLATE and gzip -------------------------------------------------- */

/* A byte buffer from nd_alloc (counted by nd_mem_live): size bytes used
 * of cap. Free it with nd_bytes_free; an empty one may have data NULL. */
typedef struct nd_bytes {
    unsigned char *data;
    size_t size, cap;
} nd_bytes;
void nd_bytes_free(nd_bytes *b); /* frees and zeroes; NULL data is fine */

/* Decodes a raw DEFLATE stream (RFC 1951: stored, fixed and dynamic
 * Huffman blocks) from in[0..n) into *out, which grows as needed up to
 * max_out bytes. *used (may be NULL) is how many input bytes the stream
 * took, its last byte included: the rest of in is not read. On ND_ERR
 * *out is empty and err says what is wrong and at which input byte. */
int nd_inflate(const void *in, size_t n, size_t max_out, nd_bytes *out,
               size_t *used, nd_error *err);

/* Decodes gzip data (RFC 1952) from in[0..n): each member's header
 * (FTEXT, FHCRC checked, FEXTRA, FNAME and FCOMMENT skipped; reserved
 * flags refused), its deflate data and its trailer (CRC-32 and ISIZE
 * checked). Several members, as `cat a.gz b.gz` makes, decode to their
 * outputs one after the other; any other bytes after a member are an
 * error. Output is limited to max_out bytes. On ND_ERR *out is empty. */
int nd_gunzip(const void *in, size_t n, size_t max_out, nd_bytes *out,
              nd_error *err);

/* Encodes in[0..n) as a raw DEFLATE stream appended to *out: level 0 in
 * stored blocks, level 1 in one fixed-Huffman block with LZ77 matches
 * found through a hash chain of 3-byte strings (runs and an image's
 * repeated rows among them). The output decodes with nd_inflate and with
 * zlib. Stops only when out of memory, like nd_alloc. */
void nd_deflate(const void *in, size_t n, int level, nd_bytes *out);

/* ---- writers ----------------------------------------------------------- */

/* A PNG image (8-bit gray for channels 1, 8-bit RGB for channels 3) from
 * height rows of width * channels bytes each, row-major, RGB interleaved.
 * The IDAT chunks hold one zlib stream: fixed-Huffman deflate, or stored
 * blocks when that would be larger (noise). */
int nd_png_write(const char *path, const uint8_t *pixels, int width,
                 int height, int channels, nd_error *err);
/* The same from a float tensor in [-1, 1], [H, W] (gray) or [C, H, W]
 * with C = 1 (gray) or 3 (RGB), any strides. */
int nd_png_write_tensor(const char *path, const nd_tensor *image,
                        nd_error *err);
/* A batch [N, C, H, W] (C = 1 or 3) tiled row by row into rows x cols
 * cells, with a white border of ND_PNG_GRID_BORDER pixels around and
 * between the images; cells past N stay white. cols <= 0 picks
 * ceil(sqrt(N)), rows <= 0 as many rows as N needs; N > rows * cols is
 * misuse. */
#define ND_PNG_GRID_BORDER 2
int nd_png_write_grid(const char *path, const nd_tensor *batch, int rows,
                      int cols, nd_error *err);
/* The uint8 a float pixel in [-1, 1] becomes (the rule above). */
uint8_t nd_pixel_to_u8(float x);

/* A scatter plot of points [N, 2] as a size x size RGB PNG of the square
 * [lo, hi]^2 (y upwards): `under` in gray, `over` in red on top (either
 * may be NULL), each point a 2x2 dot, a frame and the axes through 0;
 * points outside the square are left out. */
int nd_png_scatter(const char *path, const nd_tensor *under, const nd_tensor *over, int size,
                   double lo, double hi, nd_error *err);
/* Arrows on the square [lo, hi]^2 as a size x size RGB PNG, for a vector
 * field such as a score: from each place at[k] along vec[k] (both [M, 2],
 * in the data's units, so that vec is drawn at the length it has), in
 * blue with a head, over the points `under` (gray, may be NULL), inside a
 * frame; parts outside the square are clipped. */
int nd_png_quiver(const char *path, const nd_tensor *under, const nd_tensor *at,
                  const nd_tensor *vec, int size, double lo, double hi, nd_error *err);

/* One curve of a line plot: n points (x[i], y[i]) joined in order. */
typedef struct nd_plot_series {
    const double *x;   /* NULL: x[i] = i (steps, timesteps) */
    const double *y;
    int64_t n;
    uint8_t color[3];  /* RGB */
    const char *label; /* legend text, or NULL */
    bool thick;        /* lines 2 pixels wide rather than 1 */
} nd_plot_series;

/* What a line plot shows around its series. */
typedef struct nd_plot {
    const char *title, *xlabel, *ylabel; /* or NULL */
    bool logx, logy;                     /* log10 axes */
    double xlim[2], ylim[2];             /* {lo, hi} fixes a range; {0, 0}: from the data */
    int width, height;                   /* pixels, 64..8192 each, e.g. 640 x 400 */
} nd_plot;

/* A line plot as an RGB PNG: a loss curve and its moving average, a term
 * of the bound per timestep, rate against distortion. On white: light
 * gray grid lines at the ticks, the series in order (later ones on top),
 * a black frame around the data area, tick marks outside it with their
 * values, the axis labels (y's turned to read upwards), the title above,
 * and a legend of the labelled series in the corner of the data area
 * where it hides the fewest of their pixels. Text is in a built-in 5x7
 * font of printable ASCII (with descenders below; other bytes are boxes),
 * twice as large from 800 pixels (the smaller side) and three times from
 * 1600; images too small for text get the frame, ticks and lines alone.
 *
 * Points: a point is a gap when x or y is not finite, or not positive on
 * a log axis: the lines on either side of it stop there, and a point
 * with gaps (or the ends) on both sides is a 3x3 dot. Lines are clipped
 * to the data area; a thick line's second pixel is below it (right of it
 * where it is steep).
 *
 * Axes: a range not fixed is that of the points (with xlim fixed, of the
 * points inside it), rounded out to the ticks; one value is widened a
 * little either side. Ticks are 1, 2 or 5 x 10^k apart, as many as fit
 * at about 70 pixels (x) or 40 (y) apart; a log axis has ticks at the
 * powers of ten (and at 2 and 5 times them when there is room), other
 * multiples as minor ticks.
 *
 * Where points land: with lo and hi the ends of an axis (their log10,
 * and the values' log10, on a log axis), x = lo is the first column
 * inside the frame and x = hi the last; y = lo the last row inside it and
 * y = hi the first; linear between, rounded to the nearest pixel (halves
 * to the right and upwards). Segments are Bresenham lines between those
 * pixels.
 *
 * Misuse (NULL path, plot or series, nseries < 1, a size out of range, a
 * series with n < 0 or y NULL, a fixed range that is not lo < hi, finite,
 * positive on a log axis) stops; no usable point at all, a range wider
 * than 1e300 (or fixed and narrower than 1e-250), or a failed write is
 * ND_ERR. Written as nd_png_write writes. */
int nd_png_plot(const char *path, const nd_plot *plot, const nd_plot_series *series,
                int nseries, nd_error *err);

/* A NumPy .npy file (format 1.0): little-endian float32 whatever the
 * host, C order, the tensor's shape (any strides; 0-d is shape ()).
 * np.load reads it. */
int nd_npy_save(const char *path, const nd_tensor *x, nd_error *err);
/* A .npy file (format 1.0 or 2.0, what np.save writes) into *out, a new
 * contiguous float32 tensor of the file's shape (0-d and empty shapes
 * included) outside every scope; free it with nd_free. The dtype must be
 * '<f4', or '<f8' (rounded to float32; beyond its range +-inf), and the
 * order C (fortran_order False). Refused with ND_ERR (*out NULL): another
 * magic, version or dtype, Fortran order, a header that is not such a
 * dict, a shape of more than 8 dimensions or too many elements, and data
 * shorter or longer than the shape says. Files are read whole, up to
 * ND_DATA_MAX_BYTES. */
int nd_npy_load(const char *path, nd_tensor **out, nd_error *err);

/* ---- readers ----------------------------------------------------------- */

/* What a dataset reader returns: images [N, C, H, W] in [-1, 1] and
 * labels [N] (class numbers as floats; NULL when no labels were read). */
typedef struct nd_dataset {
    nd_tensor *images;
    nd_tensor *labels;
    int64_t n;
} nd_dataset;
void nd_dataset_free(nd_dataset *d); /* frees both tensors; d zeroed */

/* Most bytes a gzip'd file may decompress to (the readers' max_out). */
#define ND_DATA_MAX_BYTES ((size_t)1 << 31)

/* MNIST / Fashion-MNIST IDX files, plain or gzip (told apart by the gzip
 * magic 1f 8b): images (magic 0x00000803, sizes N, H, W, unsigned bytes)
 * into [N, 1, H + 2 pad, W + 2 pad], padded with pad pixels of -1 (black)
 * on each side (pad 2 makes 28x28 into 32x32); labels (magic 0x00000801,
 * size N) into [N]. labels_path may be NULL (then out->labels is NULL);
 * otherwise both files must hold the same N. On ND_ERR *out is empty. */
int nd_idx_load(const char *images_path, const char *labels_path, int pad,
                nd_dataset *out, nd_error *err);

/* CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin): records
 * of 3073 bytes, a label 0..9 then 1024 red, 1024 green and 1024 blue
 * bytes of a 32x32 image, row-major. The records of all npaths files, in
 * order, become images [N, 3, 32, 32] and labels [N]. */
int nd_cifar10_load(const char *const *paths, int npaths, nd_dataset *out,
                    nd_error *err);

/* A CSV file of points into *out, [N, D] (outside every scope): one point
 * per line, D numbers separated by commas (spaces around them allowed),
 * every line the same D; blank lines and lines starting with '#' are
 * skipped, and the first other line may be a header of names (no field a
 * number). Numbers are read by strtod (the C locale's '.') and must be
 * finite as floats. */
int nd_csv_load(const char *path, nd_tensor **out, nd_error *err);

#ifdef __cplusplus
}
#endif

#endif
