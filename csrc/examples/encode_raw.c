/* encode_raw.c - a minimal flight-style use of the marsenc C API.
 *
 * Reads a weight blob (*.pmw) and a raw interleaved image, encodes it with a
 * caller-allocated arena (allocated once; the encoder itself never allocates),
 * and writes the pymars file. Also used by bench/complexity.py and
 * scripts/callgrind_scalar.sh for callgrind counts, by
 * scripts/cross_arch_check.sh for byte identity across CPUs, and by
 * scripts/memory_figures.sh for peak memory.
 *
 *   encode_raw [--stream] [--bits B] [--refs LIB] [--target BYTES | --max-error K | --after EARLIER] BLOB RAW
 *              WIDTH HEIGHT CHANNELS QUALITY OUT [TILE]
 *
 * --bits B   samples are 8 (default: one byte each), 12 or 16 bits (two bytes
 *            each, little-endian in the file, whatever the CPU's byte order).
 * --stream   tile-row streaming: reads TILE image rows at a time and writes
 *            each row of tiles as soon as it is coded, so memory is the arena
 *            plus one strip and one row of output, whatever the image height.
 *            Without it, the whole image and the whole output are in memory.
 * --refs LIB REMAC: the rover part of a reference library (LIB.pmrl) for a
 *            REMAC blob; each tile selects and codes with its references.
 * --target BYTES  rate control (marsenc_encode_to_size): the highest quality
 *            whose file has at most BYTES; QUALITY is ignored (give 0) and the
 *            quality chosen is printed. Whole image only (not with --stream).
 * --max-error K  lossless (0) or near-lossless (marsenc_encode_max_error): every
 *            sample within +-K of the original, 12/16-bit samples at their own
 *            depth; QUALITY is ignored (give 0) and the quality chosen is printed.
 *            Whole image only.
 * --repeat N  (N >= 2) encode the image N times (whole image, QUALITY or --max-error) and
 *            print the CPU time of the encode calls alone (clock(): no blob
 *            load, no file reading or writing) and Mpx/s: the encoder-speed
 *            figure of bench/lossless_speed.py.
 * --after EARLIER  sequence coding (marsenc_encode_sequence): EARLIER is a raw
 *            frame of the same size, channels and 8-bit depth; it is encoded
 *            first at QUALITY (its reconstruction kept, as a rover keeps what it
 *            sent), then RAW is encoded against it into OUT (the same bytes as
 *            pymars.encode(raw, QUALITY, reference=<EARLIER's file>)). Whole
 *            image only.
 *
 * OUT is written as OUT.part and renamed to OUT only when complete: a refused
 * argument, a short raw file or a full disk never leaves an empty or partial
 * OUT (nor replaces an existing one). Arguments are checked before any file
 * is made.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "marsenc.h"

/* --repeat: CPU seconds of the encode calls since t0 and the rate (only when timing was asked). */
static void report_time(clock_t t0, long runs, uint32_t width, uint32_t height) {
  if (runs < 2) return;
  const double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
  printf("encode %ld x: %.4f s CPU, %.2f Mpx/s\n", runs, s, s > 0 ? (double)runs * width * height / 1e6 / s : 0.0);
}

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

/* Little-endian 16-bit samples from the file -> host-order uint16_t, in place
 * (byte-wise, so it works on big-endian CPUs too). */
static void samples16_from_le(unsigned char* bytes, size_t count) {
  uint16_t* out = (uint16_t*)(void*)bytes;
  for (size_t i = 0; i < count; ++i) {
    uint16_t v = (uint16_t)(bytes[2 * i] | (bytes[2 * i + 1] << 8));
    memcpy(&out[i], &v, 2);
  }
}

/* The output being written (OUT.part) until it is complete; removed on every failure. */
static FILE* out_file = NULL;
static char part_path[4096];

static int abandon_output(void) {
  if (out_file) fclose(out_file);
  out_file = NULL;
  if (part_path[0]) remove(part_path);
  part_path[0] = '\0';
  return 1;
}

static int fail(const char* what, int status) {
  fprintf(stderr, "%s: %s\n", what, marsenc_status_message(status));
  abandon_output();
  return 1;
}

static int fail_input(const char* message) {
  fprintf(stderr, "%s\n", message);
  abandon_output();
  return 2;
}

int main(int argc, char** argv) {
  int stream = 0;
  uint32_t bits = 8;
  const char* refs_path = NULL;
  long long target = -1; /* --target: the byte budget; -1: encode at QUALITY */
  long long max_error = -1; /* --max-error: the bound per sample; -1: encode at QUALITY */
  const char* after_path = NULL; /* --after: the earlier frame of a sequence */
  long repeat = 1;                /* --repeat: encodes timed */
  int a = 1;
  /* The library linked must be the one this header describes. */
  if (marsenc_abi_version() != MARSENC_ABI_VERSION) {
    fprintf(stderr, "libmarscore has ABI %d, marsenc.h %d: rebuild against the installed header\n",
            marsenc_abi_version(), MARSENC_ABI_VERSION);
    return 2;
  }
  for (; a < argc && argv[a][0] == '-' && argv[a][1] == '-'; ++a) {
    if (strcmp(argv[a], "--stream") == 0) {
      stream = 1;
    } else if (strcmp(argv[a], "--bits") == 0 && a + 1 < argc) {
      bits = (uint32_t)atoi(argv[++a]);
    } else if (strcmp(argv[a], "--refs") == 0 && a + 1 < argc) {
      refs_path = argv[++a];
    } else if (strcmp(argv[a], "--target") == 0 && a + 1 < argc) {
      target = atoll(argv[++a]);
    } else if (strcmp(argv[a], "--max-error") == 0 && a + 1 < argc) {
      max_error = atoll(argv[++a]);
    } else if (strcmp(argv[a], "--after") == 0 && a + 1 < argc) {
      after_path = argv[++a];
    } else if (strcmp(argv[a], "--repeat") == 0 && a + 1 < argc) {
      repeat = atol(argv[++a]);
    } else {
      break;
    }
  }
  if (argc - a < 7 || (bits != 8 && bits != 12 && bits != 16) || (target >= 0 && stream) || target == 0 ||
      target < -1 || max_error < -1 || max_error > 65535 || (max_error >= 0 && (stream || target >= 0)) ||
      (after_path && (stream || target >= 0 || max_error >= 0 || bits != 8)) || repeat < 1 || repeat > 100000 ||
      (repeat > 1 && (stream || target >= 0 || after_path))) {
    fprintf(stderr,
            "usage: %s [--stream] [--bits 8|12|16] [--refs LIB] [--repeat N] [--target BYTES | --max-error K | --after "
            "EARLIER] BLOB "
            "RAW WIDTH HEIGHT CHANNELS QUALITY OUT [TILE]\n",
            argv[0]);
    return 2;
  }
  const char* blob_path = argv[a];
  const char* raw_path = argv[a + 1];
  uint32_t width = (uint32_t)atoi(argv[a + 2]), height = (uint32_t)atoi(argv[a + 3]);
  uint32_t channels = (uint32_t)atoi(argv[a + 4]);
  int quality = atoi(argv[a + 5]);
  const char* out_path = argv[a + 6];
  uint32_t tile = argc - a > 7 ? (uint32_t)atoi(argv[a + 7]) : 256;
  const size_t sample_bytes = bits == 8 ? 1 : 2;
  const size_t row_samples = (size_t)width * channels;
  /* Refused before anything is read or written (the encoder would refuse them too, but only after
     the output file exists). */
  if (target < 0 && max_error < 0 && (quality < 1 || quality > 100)) {
    fprintf(stderr, "quality must be in 1..100, got %s\n", argv[a + 5]);
    return 2;
  }
  if (width == 0 || height == 0 || (channels != 1 && channels != 3)) {
    fprintf(stderr, "WIDTH and HEIGHT must be positive and CHANNELS 1 or 3\n");
    return 2;
  }
  if (strlen(out_path) + 6 > sizeof part_path) {
    fprintf(stderr, "output path too long: %s\n", out_path);
    return 2;
  }

  size_t blob_size;
  unsigned char* blob = read_file(blob_path, &blob_size);
  if (!blob) {
    fprintf(stderr, "cannot read the blob %s\n", blob_path);
    return 2;
  }
  size_t lib_size = 0;
  unsigned char* lib = NULL;
  if (refs_path && !(lib = read_file(refs_path, &lib_size))) {
    fprintf(stderr, "cannot read the reference library %s\n", refs_path);
    return 2;
  }
  size_t arena_size = lib ? marsenc_arena_size_with_library(blob, blob_size, lib, lib_size, tile)
                          : marsenc_arena_size(blob, blob_size, tile);
  if (arena_size == 0) {
    fprintf(stderr, "invalid weight blob, reference library or tile size\n");
    return 2;
  }
  void* arena = malloc(arena_size);
  marsenc_encoder* enc = NULL;
  int st = lib ? marsenc_init_with_library(arena, arena_size, blob, blob_size, lib, lib_size, tile, &enc)
               : marsenc_init(arena, arena_size, blob, blob_size, tile, &enc);
  free(blob); /* the encoder keeps its own converted copies in the arena */
  free(lib);
  if (st != MARSENC_OK) return fail("init", st);

  snprintf(part_path, sizeof part_path, "%s.part", out_path);
  out_file = fopen(part_path, "wb");
  if (!out_file) {
    part_path[0] = '\0';
    fprintf(stderr, "cannot write %s\n", out_path);
    return 1;
  }
  size_t total = 0, out_capacity = 0;
  if (!stream) {
    size_t raw_size;
    unsigned char* raw = read_file(raw_path, &raw_size);
    if (!raw || raw_size != row_samples * height * sample_bytes)
      return fail_input("cannot read the raw image (or its size is not WIDTH*HEIGHT*CHANNELS*sample bytes)");
    if (bits != 8) samples16_from_le(raw, row_samples * height);
    marsenc_image img = {bits == 8 ? raw : NULL, bits == 8 ? NULL : (const uint16_t*)(void*)raw,
                         width, height, channels, bits, 0};
    size_t cap = marsenc_max_output_size(enc, width, height);
    unsigned char* out = (unsigned char*)malloc(cap);
    out_capacity = cap;
    if (target > 0) {
      st = marsenc_encode_to_size(enc, &img, (size_t)target, out, cap, &total, &quality);
      if (st != MARSENC_OK) return fail("encode to size", st);
      printf("quality %d\n", quality);
    } else if (max_error >= 0) {
      const clock_t t0 = clock();
      for (long r = 0; r < repeat; ++r) {
        st = marsenc_encode_max_error(enc, &img, (uint32_t)max_error, out, cap, &total, &quality);
        if (st != MARSENC_OK) return fail("encode with max error", st);
      }
      report_time(t0, repeat, width, height);
      printf("quality %d\n", quality);
    } else if (after_path) {
      /* The earlier frame first, keeping its reconstruction (allocated once, as a rover would at start-up). */
      size_t earlier_size;
      unsigned char* earlier = read_file(after_path, &earlier_size);
      if (!earlier || earlier_size != row_samples * height)
        return fail_input("cannot read the earlier raw frame (or its size is not WIDTH*HEIGHT*CHANNELS bytes)");
      unsigned char* keep = (unsigned char*)malloc(marsenc_frame_size(enc, width, height));
      marsenc_image first = {earlier, NULL, width, height, channels, 8, 0};
      st = marsenc_encode_sequence(enc, &first, quality, NULL, out, cap, &total, keep);
      if (st != MARSENC_OK) return fail("encode the earlier frame", st);
      marsenc_frame ref;
      memset(&ref, 0, sizeof ref);
      ref.pixels8 = keep;
      ref.width = width;
      ref.height = height;
      ref.channels = marsenc_frame_channels(enc);
      marsenc_file_id(out, total, ref.id);
      st = marsenc_encode_sequence(enc, &img, quality, &ref, out, cap, &total, NULL);
      if (st != MARSENC_OK) return fail("encode against the earlier frame", st);
      free(keep);
      free(earlier);
    } else {
      const clock_t t0 = clock();
      for (long r = 0; r < repeat; ++r) {
        st = marsenc_encode(enc, &img, quality, out, cap, &total);
        if (st != MARSENC_OK) return fail("encode", st);
      }
      report_time(t0, repeat, width, height);
    }
    if (fwrite(out, 1, total, out_file) != total) return fail("write", MARSENC_ERR_INTERNAL);
    free(out);
    free(raw);
  } else {
    FILE* raw = fopen(raw_path, "rb");
    if (!raw) return fail_input("cannot read the raw image");
    /* One strip of tile rows in, one row of tiles out: allocated once. */
    unsigned char* strip = (unsigned char*)malloc(row_samples * tile * sample_bytes);
    size_t cap = marsenc_max_tile_row_size(enc, width);
    if (cap < 64) cap = 64; /* room for the file header */
    unsigned char* out = (unsigned char*)malloc(cap);
    out_capacity = cap;
    marsenc_geometry g = {width, height, channels, bits};
    size_t n = 0;
    st = marsenc_begin(enc, &g, quality, out, cap, &n);
    if (st != MARSENC_OK) return fail("begin", st);
    if (fwrite(out, 1, n, out_file) != n) return fail("write", MARSENC_ERR_INTERNAL);
    total += n;
    for (uint32_t rows; (rows = marsenc_next_tile_row_height(enc)) > 0;) {
      const size_t samples = row_samples * rows;
      if (fread(strip, sample_bytes, samples, raw) != samples)
        return fail_input("the raw image is shorter than WIDTH*HEIGHT*CHANNELS samples");
      if (bits != 8) samples16_from_le(strip, samples);
      st = marsenc_encode_tile_row(enc, strip, 0, out, cap, &n);
      if (st != MARSENC_OK) return fail("tile row", st);
      if (fwrite(out, 1, n, out_file) != n) return fail("write", MARSENC_ERR_INTERNAL);
      total += n;
    }
    st = marsenc_end(enc);
    if (st != MARSENC_OK) return fail("end", st);
    fclose(raw);
    free(out);
    free(strip);
  }
  int closed = fclose(out_file);
  out_file = NULL;
  if (closed != 0) return fail("write", MARSENC_ERR_INTERNAL);
  if (rename(part_path, out_path) != 0) {
    fprintf(stderr, "cannot write %s\n", out_path);
    return abandon_output();
  }
  part_path[0] = '\0';
  printf("%zu bytes (arena %zu bytes, output buffer %zu bytes%s)\n", total, arena_size, out_capacity,
         stream ? ", streamed by tile rows" : "");
  free(arena);
  return 0;
}
