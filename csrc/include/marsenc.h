/* marsenc.h - the pymars rover encoder, C API for flight software.
 *
 * Memory: the caller allocates one arena of marsenc_arena_size() bytes and
 * passes it to marsenc_init(). The arena size depends only on the weight blob
 * and the tile size: not on the image size, channels, bit depth or quality, so
 * one arena encodes images of any size up to 65535 x 65535 (tiles are coded one
 * at a time, and the tile-row streaming calls below never need the whole image
 * in memory either). The encoder never allocates after that, keeps no global
 * state, throws nothing and never aborts: every call returns a MARSENC_* status.
 * The weight blob (*.pmw) is parsed and converted into the arena; the caller
 * may free the blob afterwards. Encoders in separate arenas are independent
 * (one per thread is fine); one encoder must not be used by two threads at once.
 *
 * Output: a complete pymars file (docs/bitstream.md), byte-identical on every
 * supported CPU for the same image, quality, tile size and blob.
 *
 * Whole image in memory:
 *     size_t n = marsenc_arena_size(blob, blob_len, 256);
 *     void* arena = malloc(n);
 *     marsenc_encoder* enc;
 *     if (marsenc_init(arena, n, blob, blob_len, 256, &enc) != MARSENC_OK) ...;
 *     marsenc_image img = {pixels, NULL, 1600, 1152, 3, 8, 0};
 *     size_t cap = marsenc_max_output_size(enc, 1600, 1152), len;
 *     int st = marsenc_encode(enc, &img, 75, out, cap, &len);
 *
 * Tile-row streaming (the image arrives, or is read from a detector, 256 rows
 * at a time; the output goes to storage row of tiles by row of tiles; the
 * concatenated outputs are byte-identical to marsenc_encode's):
 *     marsenc_geometry g = {1600, 1152, 3, 8};
 *     st = marsenc_begin(enc, &g, 75, out, cap, &len);           // file header
 *     for (uint32_t rows; (rows = marsenc_next_tile_row_height(enc)) > 0;) {
 *       read_rows(strip, rows);                                     // rows x 1600 x 3 samples
 *       st = marsenc_encode_tile_row(enc, strip, 0, out, row_cap, &len);  // that row's tile records
 *       store(out, len);
 *     }
 *     st = marsenc_end(enc);
 *
 * Rate control (the highest quality whose file fits a downlink budget):
 *     int q;
 *     st = marsenc_encode_to_size(enc, &img, 200000, out, cap, &len, &q);
 *
 * Version: a flight build checks the library it links against the header it
 * was compiled with:
 *     if (marsenc_abi_version() != MARSENC_ABI_VERSION) refuse();
 */
#ifndef MARSENC_H
#define MARSENC_H

#include <stddef.h>
#include <stdint.h>

/* The pymars release this header belongs to (the CMake project version). */
#define MARSENC_VERSION_MAJOR 0
#define MARSENC_VERSION_MINOR 1
#define MARSENC_VERSION_PATCH 0
/* The binary interface: raised whenever a change breaks a program compiled
 * against an older header (a struct layout, a signature, a status meaning).
 * Adding a function or a status code does not change it. */
#define MARSENC_ABI_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

enum {
  MARSENC_OK = 0,
  MARSENC_ERR_ARGUMENT = 1,      /* a null pointer or an out-of-range argument */
  MARSENC_ERR_BLOB = 2,          /* the weight blob is invalid (see marsenc_blob_error) */
  MARSENC_ERR_ARENA = 3,         /* the arena is smaller than marsenc_arena_size() */
  MARSENC_ERR_IMAGE = 4,         /* bad image size, channels, bit depth or stride */
  MARSENC_ERR_QUALITY = 5,       /* quality outside 1..100 */
  MARSENC_ERR_OUTPUT_FULL = 6,   /* output capacity too small (see marsenc_max_output_size) */
  MARSENC_ERR_INTERNAL = 7,
  MARSENC_ERR_SEQUENCE = 8,      /* streaming calls out of order (begin, tile rows, end) */
  MARSENC_ERR_LIBRARY = 9,       /* the reference library is invalid, for another model, or the model has no
                                    reference branch */
  MARSENC_ERR_TARGET = 10,       /* marsenc_encode_to_size: even quality 1 does not fit target_bytes */
  MARSENC_ERR_REFERENCE = 11     /* sequence coding: a bad earlier frame (size, channels) or one the model cannot use */
};

/* MARSENC_ABI_VERSION of the compiled library (compare with the header's). */
int marsenc_abi_version(void);

typedef struct marsenc_encoder marsenc_encoder;

typedef struct marsenc_image {
  const uint8_t* pixels8;   /* 8-bit samples (bit_depth 8), interleaved channels */
  const uint16_t* pixels16; /* or 12/16-bit samples (bit_depth 12 or 16) */
  uint32_t width;
  uint32_t height;
  uint32_t channels;   /* 1 or 3 */
  uint32_t bit_depth;  /* 8, 12 or 16 */
  size_t row_stride;   /* samples per row; 0 means width * channels */
} marsenc_image;

/* Bytes of arena needed for this blob and tile size (a multiple of 16,
 * 16..4096); 0 if the blob is invalid. Independent of the image size, channels,
 * bit depth and quality: it holds the converted weights and tables and the
 * workspace of ONE tile, never the image or the output. */
size_t marsenc_arena_size(const uint8_t* blob, size_t blob_size, uint32_t tile_size);

/* Parses the blob into the arena and prepares the tile workspace. */
int marsenc_init(void* arena, size_t arena_size, const uint8_t* blob, size_t blob_size, uint32_t tile_size,
                 marsenc_encoder** encoder);

/* REMAC (reference-based coding, docs/remac.md): the same, with the rover part
 * of a reference library (LIB.pmrl, built for this blob's model; the blob must
 * be a REMAC model). The library is copied into the arena (the caller may free
 * it afterwards). Every tile then selects its entropy reference (nearest latent
 * descriptor) and decoder reference (nearest uniform-LBP histogram by KL),
 * codes with the entropy reference, and the file header carries the library
 * hash. marsenc_arena_size_with_library returns 0 for an invalid pair. */
size_t marsenc_arena_size_with_library(const uint8_t* blob, size_t blob_size, const uint8_t* library,
                                       size_t library_size, uint32_t tile_size);
int marsenc_init_with_library(void* arena, size_t arena_size, const uint8_t* blob, size_t blob_size,
                              const uint8_t* library, size_t library_size, uint32_t tile_size,
                              marsenc_encoder** encoder);

/* Upper bound of the encoded file size for an image of this size. */
size_t marsenc_max_output_size(const marsenc_encoder* encoder, uint32_t width, uint32_t height);

/* Encodes the whole image into out[0, capacity); *written gets the file size.
 * MARSENC_ERR_SEQUENCE while a tile-row stream is open. */
int marsenc_encode(marsenc_encoder* encoder, const marsenc_image* image, int quality, uint8_t* out,
                   size_t capacity, size_t* written);

/* Lossless and near-lossless: encodes the whole image at the model's cheapest
 * quality whose every decoded sample is within +-max_error of the original
 * (0: lossless), into out[0, capacity); *written gets the file size and
 * *quality the quality chosen. 12/16-bit images are coded at their own bit
 * depth (max_error in their units; file header flag bit 1, docs/bitstream.md
 * §4.8), which needs a model whose near-lossless qualities are range coded.
 * The result equals pymars.encode(image, max_error=K) with the same blob and
 * tile size, byte for byte. MARSENC_ERR_QUALITY when the model has no such
 * quality; MARSENC_ERR_SEQUENCE while a tile-row stream is open. */
int marsenc_encode_max_error(marsenc_encoder* encoder, const marsenc_image* image, uint32_t max_error, uint8_t* out,
                             size_t capacity, size_t* written, int* quality);

/* ---- Sequence coding (docs/bitstream.md §4.10) ---------------------------
 * A frame already sent (a mosaic neighbour, the other stereo eye, a repeated
 * pointing) is known exactly on both sides: the rover keeps the reconstruction
 * of what it sent, the ground decodes the same samples. Each tile of the new
 * frame that overlaps it is also coded predicted from it, and the shorter of
 * the two codes is kept; the file names the earlier frame by the id of its
 * file (marsenc_file_id), and the ground refuses to decode it without that
 * frame. Memory: the caller keeps each reference in its own buffer of
 * marsenc_frame_size() bytes, allocated at start-up (no heap in the encoder).
 *
 *     uint8_t* keep = malloc(marsenc_frame_size(enc, 1024, 1024));  // at start-up
 *     marsenc_frame ref = {0};
 *     st = marsenc_encode_sequence(enc, &img1, 75, NULL, out, cap, &len, keep);   // frame 1, intra
 *     ref.pixels8 = keep; ref.width = 1024; ref.height = 1024;
 *     ref.channels = marsenc_frame_channels(enc);
 *     marsenc_file_id(out, len, ref.id);
 *     st = marsenc_encode_sequence(enc, &img2, 75, &ref, out, cap, &len, NULL);   // frame 2 against it
 */
typedef struct marsenc_frame {
  const uint8_t* pixels8; /* the earlier frame's reconstruction: 8-bit, marsenc_frame_channels() channels */
  uint32_t width;
  uint32_t height;
  uint32_t channels;
  size_t row_stride; /* samples per row; 0 means width * channels */
  uint8_t id[8];     /* marsenc_file_id() of the earlier frame's file */
} marsenc_frame;

/* Bytes of one reconstruction of a width x height frame (width x height x
 * marsenc_frame_channels()); 0 for an invalid size. */
size_t marsenc_frame_size(const marsenc_encoder* encoder, uint32_t width, uint32_t height);

/* Channels of the model's samples, and so of every reconstruction (1 or 3). */
uint32_t marsenc_frame_channels(const marsenc_encoder* encoder);

/* The 8-byte id that names a file as a reference: the first 8 bytes of its SHA-256. */
void marsenc_file_id(const uint8_t* file, size_t size, uint8_t id[8]);

/* marsenc_encode, optionally against `reference` (NULL: none; only an 8-bit
 * image at a wavelet quality uses it, other files are coded as marsenc_encode
 * codes them), and optionally writing the frame's reconstruction, exactly as
 * the ground decodes it, into `reconstruction` (NULL: not kept;
 * marsenc_frame_size() bytes; 8-bit images at near-lossless and wavelet
 * qualities only, else MARSENC_ERR_REFERENCE). MARSENC_ERR_REFERENCE for a
 * reference of another size range or channel count. The bytes equal
 * pymars.encode(image, quality, reference=...) with the same blob and tile size. */
int marsenc_encode_sequence(marsenc_encoder* encoder, const marsenc_image* image, int quality,
                            const marsenc_frame* reference, uint8_t* out, size_t capacity, size_t* written,
                            uint8_t* reconstruction);

/* Rate control: encodes the whole image at the highest quality (1..100)
 * whose complete file, header included, has at most target_bytes, into
 * out[0, capacity); *written gets the file size and *quality the quality
 * chosen. File size grows with quality, so a binary search (quality 1 first,
 * then lo = 1, hi = 100, mid = (lo + hi + 1) / 2) re-encodes the image at most
 * 8 times, plus once more when the last try did not fit; each try stops as
 * soon as it exceeds the budget, and the arena is all the memory it uses. The
 * result equals marsenc_encode at *quality, and pymars.encode(image,
 * target_bytes=N) with the same blob and tile size, byte for byte (one search
 * in the core serves both). capacity must be at least
 * min(target_bytes, marsenc_max_output_size(...)) (else MARSENC_ERR_OUTPUT_FULL:
 * the buffer, not the target, would choose the quality). MARSENC_ERR_TARGET
 * when even quality 1 does not fit. On any failure *written and *quality are
 * 0 and out holds no valid file. MARSENC_ERR_SEQUENCE while a tile-row stream
 * is open. */
int marsenc_encode_to_size(marsenc_encoder* encoder, const marsenc_image* image, size_t target_bytes, uint8_t* out,
                           size_t capacity, size_t* written, int* quality);

/* ---- Tile-row streaming ------------------------------------------------
 * begin writes the file header; each encode_tile_row call takes the next
 * tile_size image rows (fewer for the last row of tiles: see
 * marsenc_next_tile_row_height) and writes the records of that row's tiles;
 * end checks that every row was given. Each call writes into out[0, capacity)
 * from its start and sets *written to the bytes it wrote; concatenating the
 * outputs of begin and of every row gives the bytes of marsenc_encode. If a
 * call fails (e.g. MARSENC_ERR_OUTPUT_FULL) nothing is consumed: the same row
 * may be given again with a larger buffer. */

typedef struct marsenc_geometry {
  uint32_t width;      /* 1..65535 */
  uint32_t height;     /* 1..65535 */
  uint32_t channels;   /* 1 or 3 */
  uint32_t bit_depth;  /* 8 (uint8_t samples), 12 or 16 (uint16_t samples) */
} marsenc_geometry;

/* Starts a file: checks the geometry and quality, writes the file header
 * (40 bytes). MARSENC_ERR_SEQUENCE if a stream is already open. */
int marsenc_begin(marsenc_encoder* encoder, const marsenc_geometry* geometry, int quality, uint8_t* out,
                  size_t capacity, size_t* written);

/* Rows the next marsenc_encode_tile_row call takes: tile_size, fewer for the
 * last row of tiles, 0 when every row was given or no stream is open. */
uint32_t marsenc_next_tile_row_height(const marsenc_encoder* encoder);

/* Upper bound of the bytes one row of tiles of an image this wide can take. */
size_t marsenc_max_tile_row_size(const marsenc_encoder* encoder, uint32_t width);

/* Encodes the next row of tiles. `rows` points at the first sample of the
 * row's first image row (uint8_t for bit_depth 8, uint16_t otherwise;
 * interleaved channels); row_stride is in samples, 0 means width * channels. */
int marsenc_encode_tile_row(marsenc_encoder* encoder, const void* rows, size_t row_stride, uint8_t* out,
                            size_t capacity, size_t* written);

/* Closes the stream (always: the encoder is ready for a new begin afterwards).
 * MARSENC_OK when every row of tiles was given, MARSENC_ERR_SEQUENCE if the
 * file is incomplete or no stream was open. */
int marsenc_end(marsenc_encoder* encoder);

/* The 8-byte model id (first 8 bytes of the blob's SHA-256) written into files. */
void marsenc_model_id(const marsenc_encoder* encoder, uint8_t model_id[8]);

/* A static, human-readable message for a MARSENC_* status. */
const char* marsenc_status_message(int status);

/* ------------------------------------------------------------------------
 * Texture matcher (docs/texture-matcher.md): LBP histograms and the nearest
 * reference by a fixed-point divergence, the very code pymars.texture calls,
 * so a rover selection equals the ground's on every CPU. These functions need
 * no encoder or arena, allocate nothing and write only into the caller's
 * buffers.
 *
 *   uint32_t hist[256];
 *   marsenc_lbp_histograms(gray, h, w, w, MARSENC_LBP_DEFAULT, 0, hist, 256);
 *   size_t best; uint32_t bits_q16;
 *   marsenc_nearest_histogram(hist, dictionary, n_refs, 256, MARSENC_DIV_KL, &best, &bits_q16);
 * ------------------------------------------------------------------------ */
enum {
  MARSENC_LBP_DEFAULT = 0, /* the 8-bit pattern, 256 bins */
  MARSENC_LBP_UNIFORM = 1, /* 58 uniform patterns + 1 other, 59 bins */
  MARSENC_LBP_RIU2 = 2     /* rotation-invariant uniform, 10 bins */
};
enum {
  MARSENC_DIV_KL = 0, /* D_KL(reference || query) */
  MARSENC_DIV_JS = 1  /* Jensen-Shannon divergence */
};

/* Counts marsenc_lbp_histograms writes: patches_y * patches_x * bins (bins for
 * patch 0, the whole image); 0 for an invalid variant or an empty image. */
size_t marsenc_lbp_histogram_size(uint32_t height, uint32_t width, uint32_t patch, int variant);

/* uint32 LBP histograms (8 neighbours, radius 1, edge replication) of a gray
 * image: one per non-overlapping patch x patch square in raster order (partial
 * patches at the right and bottom kept), or one for the whole image when
 * patch is 0. MARSENC_ERR_ARGUMENT for null pointers, stride < width or a bad
 * variant; MARSENC_ERR_OUTPUT_FULL if capacity < marsenc_lbp_histogram_size. */
int marsenc_lbp_histograms(const uint8_t* gray, uint32_t height, uint32_t width, size_t stride, int variant,
                           uint32_t patch, uint32_t* histograms, size_t capacity);

/* The dictionary row (count x bins, row-major) closest to the query:
 * argmin_i D(dictionary_i || query) in Q16 bits (integer, identical on every
 * CPU), ties to the lowest index. MARSENC_ERR_ARGUMENT for null pointers,
 * count 0, bins outside 1..65536 or a bad metric. */
int marsenc_nearest_histogram(const uint32_t* query, const uint32_t* dictionary, size_t count, size_t bins,
                              int metric, size_t* index, uint32_t* divergence_q16);

#ifdef __cplusplus
}
#endif

#endif /* MARSENC_H */
