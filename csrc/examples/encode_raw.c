/* encode_raw.c - a minimal flight-style use of the marsenc C API.
 *
 * Reads a weight blob (*.pmw) and a raw interleaved 8-bit image, encodes it
 * with a caller-allocated arena (the only allocation, done once), and writes
 * the pymars file. Also used by bench/complexity.py for callgrind counts.
 *
 *   encode_raw BLOB RAW WIDTH HEIGHT CHANNELS QUALITY OUT [TILE]
 */
#include <stdio.h>
#include <stdlib.h>

#include "marsenc.h"

static unsigned char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* buf = n > 0 ? (unsigned char*)malloc((size_t)n) : NULL;
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *size = buf ? (size_t)n : 0;
  return buf;
}

int main(int argc, char** argv) {
  if (argc < 8) {
    fprintf(stderr, "usage: %s BLOB RAW WIDTH HEIGHT CHANNELS QUALITY OUT [TILE]\n", argv[0]);
    return 2;
  }
  size_t blob_size, raw_size;
  unsigned char* blob = read_file(argv[1], &blob_size);
  unsigned char* raw = read_file(argv[2], &raw_size);
  uint32_t width = (uint32_t)atoi(argv[3]), height = (uint32_t)atoi(argv[4]), channels = (uint32_t)atoi(argv[5]);
  int quality = atoi(argv[6]);
  uint32_t tile = argc > 8 ? (uint32_t)atoi(argv[8]) : 256;
  if (!blob || !raw || raw_size != (size_t)width * height * channels) {
    fprintf(stderr, "cannot read the blob or the raw image (or its size is not WIDTH*HEIGHT*CHANNELS)\n");
    return 2;
  }
  size_t arena_size = marsenc_arena_size(blob, blob_size, tile);
  if (arena_size == 0) {
    fprintf(stderr, "invalid weight blob or tile size\n");
    return 2;
  }
  void* arena = malloc(arena_size);
  marsenc_encoder* enc = NULL;
  int st = marsenc_init(arena, arena_size, blob, blob_size, tile, &enc);
  if (st != MARSENC_OK) {
    fprintf(stderr, "init: %s\n", marsenc_status_message(st));
    return 1;
  }
  marsenc_image img = {raw, NULL, width, height, channels, 8, 0};
  size_t cap = marsenc_max_output_size(enc, width, height), written = 0;
  unsigned char* out = (unsigned char*)malloc(cap);
  st = marsenc_encode(enc, &img, quality, out, cap, &written);
  if (st != MARSENC_OK) {
    fprintf(stderr, "encode: %s\n", marsenc_status_message(st));
    return 1;
  }
  FILE* f = fopen(argv[7], "wb");
  if (!f || fwrite(out, 1, written, f) != written) {
    fprintf(stderr, "cannot write %s\n", argv[7]);
    return 1;
  }
  fclose(f);
  printf("%zu bytes (arena %zu bytes)\n", written, arena_size);
  free(out);
  free(arena);
  free(raw);
  free(blob);
  return 0;
}
