/* marsenc.h - the pymars rover encoder, C API for flight software.
 *
 * Memory: the caller allocates one arena of marsenc_arena_size() bytes and
 * passes it to marsenc_init(). The encoder never allocates after that, keeps
 * no global state, throws nothing and never aborts: every call returns a
 * MARSENC_* status. The weight blob (*.pmw) is parsed and converted into the
 * arena; the caller may free the blob afterwards.
 *
 * Output: a complete pymars file (docs/bitstream.md), byte-identical on every
 * supported CPU for the same image, quality, tile size and blob.
 *
 * Example:
 *     size_t n = marsenc_arena_size(blob, blob_len, 256);
 *     void* arena = malloc(n);
 *     marsenc_encoder* enc;
 *     if (marsenc_init(arena, n, blob, blob_len, 256, &enc) != MARSENC_OK) ...;
 *     marsenc_image img = {pixels, NULL, 1600, 1152, 3, 8, 0};
 *     size_t cap = marsenc_max_output_size(enc, 1600, 1152), len;
 *     int st = marsenc_encode(enc, &img, 75, out, cap, &len);
 */
#ifndef MARSENC_H
#define MARSENC_H

#include <stddef.h>
#include <stdint.h>

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
  MARSENC_ERR_INTERNAL = 7
};

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
 * 16..4096); 0 if the blob is invalid. */
size_t marsenc_arena_size(const uint8_t* blob, size_t blob_size, uint32_t tile_size);

/* Parses the blob into the arena and prepares the tile workspace. */
int marsenc_init(void* arena, size_t arena_size, const uint8_t* blob, size_t blob_size, uint32_t tile_size,
                 marsenc_encoder** encoder);

/* Upper bound of the encoded file size for an image of this size. */
size_t marsenc_max_output_size(const marsenc_encoder* encoder, uint32_t width, uint32_t height);

/* Encodes the whole image into out[0, capacity); *written gets the file size. */
int marsenc_encode(marsenc_encoder* encoder, const marsenc_image* image, int quality, uint8_t* out,
                   size_t capacity, size_t* written);

/* The 8-byte model id (first 8 bytes of the blob's SHA-256) written into files. */
void marsenc_model_id(const marsenc_encoder* encoder, uint8_t model_id[8]);

/* A static, human-readable message for a MARSENC_* status. */
const char* marsenc_status_message(int status);

#ifdef __cplusplus
}
#endif

#endif /* MARSENC_H */
