// test_marsenc.cpp - the flight C API end to end, with a real weight blob.
//
//   test_marsenc BLOB
//
// Checks: the arena size query agrees with what init needs; a too-small arena
// and a damaged blob are refused with their status; encoding is
// deterministic; bad arguments give status codes (never an abort); the output
// capacity is never exceeded; no heap allocation happens after init; the
// tile-row streaming calls give the bytes of the whole-image call; rate
// control (marsenc_encode_to_size) picks the quality of the binary search and
// writes marsenc_encode's bytes for it; the version macros match the library;
// and the entropy decoder re-derives every symbol and table index of every tile.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "check.h"
#include "core/arena.h"
#include "core/container.h"
#include "core/decoder.h"
#include "core/encoder.h"
#include "marsenc.h"

// Counts every heap allocation of the process (operator new and malloc-based).
static long g_allocations = 0;
void* operator new(size_t n) {
  ++g_allocations;
  void* p = std::malloc(n ? n : 1);
  if (!p) std::abort();
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

static std::vector<uint8_t> read_file(const char* path) {
  std::vector<uint8_t> data;
  FILE* f = std::fopen(path, "rb");
  if (!f) return data;
  uint8_t buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + n);
  std::fclose(f);
  return data;
}

// A deterministic textured RGB test image.
static std::vector<uint8_t> test_image(uint32_t w, uint32_t h, uint32_t c) {
  std::vector<uint8_t> img(size_t(w) * h * c);
  pymars_test::TestRng rng(42);
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x)
      for (uint32_t k = 0; k < c; ++k)
        img[(size_t(y) * w + x) * c + k] = uint8_t((x * 3 + y * 2 + k * 40 + rng.below(24)) & 0xFF);
  return img;
}

// Encodes `im` through the tile-row streaming calls, one strip at a time,
// each strip copied into its own buffer (as a detector read-out would hand
// it over), and returns the concatenated output.
static std::vector<uint8_t> encode_streamed(marsenc_encoder* enc, const marsenc_image& im, int quality,
                                            size_t strip_stride) {
  std::vector<uint8_t> file;
  const size_t row_samples = size_t(im.width) * im.channels;
  const size_t stride = im.row_stride ? im.row_stride : row_samples;
  const size_t bytes_per_sample = im.bit_depth == 8 ? 1 : 2;
  const size_t row_cap = marsenc_max_tile_row_size(enc, im.width);
  std::vector<uint8_t> out(row_cap > 64 ? row_cap : 64);
  std::vector<uint8_t> strip(size_t(256) * (strip_stride ? strip_stride : row_samples) * bytes_per_sample);
  marsenc_geometry g = {im.width, im.height, im.channels, im.bit_depth};
  size_t n = 0;
  CHECK(marsenc_begin(enc, &g, quality, out.data(), out.size(), &n) == MARSENC_OK);
  file.insert(file.end(), out.begin(), out.begin() + long(n));
  uint32_t y = 0;
  for (uint32_t rows; (rows = marsenc_next_tile_row_height(enc)) > 0; y += rows) {
    const size_t dst_stride = strip_stride ? strip_stride : row_samples;
    for (uint32_t r = 0; r < rows; ++r) {
      const uint8_t* src = im.bit_depth == 8 ? static_cast<const uint8_t*>(im.pixels8) + (y + r) * stride
                                             : reinterpret_cast<const uint8_t*>(im.pixels16 + (y + r) * stride);
      std::memcpy(strip.data() + r * dst_stride * bytes_per_sample, src, row_samples * bytes_per_sample);
    }
    CHECK(marsenc_encode_tile_row(enc, strip.data(), strip_stride, out.data(), out.size(), &n) == MARSENC_OK);
    file.insert(file.end(), out.begin(), out.begin() + long(n));
  }
  CHECK(y == im.height);
  CHECK(marsenc_end(enc) == MARSENC_OK);
  return file;
}

static std::vector<uint8_t> encode_whole(marsenc_encoder* enc, const marsenc_image& im, int quality) {
  std::vector<uint8_t> out(marsenc_max_output_size(enc, im.width, im.height));
  size_t n = 0;
  CHECK(marsenc_encode(enc, &im, quality, out.data(), out.size(), &n) == MARSENC_OK);
  out.resize(n);
  return out;
}

// Tile-row streaming gives the bytes of marsenc_encode, without heap use, and
// refuses calls out of order with a status.
static void check_streaming(marsenc_encoder* enc, uint32_t tile) {
  const uint32_t w = 150, h = 100;  // 3 x 2 tiles of 64, partial at the right and bottom
  std::vector<uint8_t> rgb = test_image(w, h, 3);
  marsenc_image im = {rgb.data(), nullptr, w, h, 3, 8, 0};
  const std::vector<uint8_t> whole = encode_whole(enc, im, 60);
  size_t n = 0;
  std::vector<uint8_t> out(marsenc_max_tile_row_size(enc, w) + 64);
  marsenc_geometry g = {w, h, 3, 8};
  const long mid = g_allocations;
  CHECK(marsenc_begin(enc, &g, 60, out.data(), out.size(), &n) == MARSENC_OK);
  CHECK(n == 40 && std::memcmp(out.data(), whole.data(), 40) == 0);
  size_t at = n;
  for (uint32_t y = 0; y < h; y += tile) {
    CHECK(marsenc_encode_tile_row(enc, rgb.data() + size_t(y) * w * 3, 0, out.data(), out.size(), &n) == MARSENC_OK);
    CHECK(at + n <= whole.size() && std::memcmp(out.data(), whole.data() + at, n) == 0);
    at += n;
  }
  CHECK(marsenc_end(enc) == MARSENC_OK);
  CHECK(g_allocations == mid);  // no heap while streaming
  CHECK(at == whole.size());

  // Copied strips, a padded strip stride, a padded source stride.
  CHECK(encode_streamed(enc, im, 60, 0) == whole);
  CHECK(encode_streamed(enc, im, 60, w * 3 + 7) == whole);
  std::vector<uint8_t> padded(size_t(w * 3 + 5) * h);
  for (uint32_t y = 0; y < h; ++y) std::memcpy(padded.data() + size_t(y) * (w * 3 + 5), rgb.data() + size_t(y) * w * 3, w * 3);
  marsenc_image impad = {padded.data(), nullptr, w, h, 3, 8, w * 3 + 5};
  CHECK(encode_whole(enc, impad, 60) == whole);
  CHECK(encode_streamed(enc, impad, 60, 0) == whole);

  // 16-bit gray and 12-bit RGB, and an image of exactly one row of tiles.
  std::vector<uint16_t> g16(size_t(w) * h), c12(size_t(w) * h * 3);
  for (size_t i = 0; i < g16.size(); ++i) g16[i] = uint16_t(rgb[3 * i] * 257 + (i % 7));
  for (size_t i = 0; i < c12.size(); ++i) c12[i] = uint16_t((rgb[i] * 16 + (i % 13)) & 0xFFF);
  marsenc_image im16 = {nullptr, g16.data(), w, h, 1, 16, 0};
  CHECK(encode_streamed(enc, im16, 45, 0) == encode_whole(enc, im16, 45));
  marsenc_image im12 = {nullptr, c12.data(), w, h, 3, 12, 0};
  CHECK(encode_streamed(enc, im12, 90, 0) == encode_whole(enc, im12, 90));
  marsenc_image one_row = {rgb.data(), nullptr, w, tile, 3, 8, 0};
  CHECK(encode_streamed(enc, one_row, 10, 0) == encode_whole(enc, one_row, 10));

  // Out of order: a row before begin, a second begin, encode while streaming,
  // end before the last row, a row after the last one.
  CHECK(marsenc_next_tile_row_height(enc) == 0);
  CHECK(marsenc_encode_tile_row(enc, rgb.data(), 0, out.data(), out.size(), &n) == MARSENC_ERR_SEQUENCE);
  CHECK(marsenc_end(enc) == MARSENC_ERR_SEQUENCE);
  CHECK(marsenc_begin(enc, &g, 60, out.data(), out.size(), &n) == MARSENC_OK);
  CHECK(marsenc_begin(enc, &g, 60, out.data(), out.size(), &n) == MARSENC_ERR_SEQUENCE);
  std::vector<uint8_t> big(whole.size() + 64);
  CHECK(marsenc_encode(enc, &im, 60, big.data(), big.size(), &n) == MARSENC_ERR_SEQUENCE);
  CHECK(marsenc_next_tile_row_height(enc) == tile);
  CHECK(marsenc_encode_tile_row(enc, rgb.data(), 0, out.data(), out.size(), &n) == MARSENC_OK);
  CHECK(marsenc_next_tile_row_height(enc) == h - tile);
  CHECK(marsenc_end(enc) == MARSENC_ERR_SEQUENCE);  // incomplete, but closed
  CHECK(marsenc_next_tile_row_height(enc) == 0);
  CHECK(marsenc_encode(enc, &im, 60, big.data(), big.size(), &n) == MARSENC_OK);

  // A full output buffer consumes nothing: the same row goes again.
  CHECK(marsenc_begin(enc, &g, 60, out.data(), out.size(), &n) == MARSENC_OK);
  CHECK(marsenc_encode_tile_row(enc, rgb.data(), 0, out.data(), 30, &n) == MARSENC_ERR_OUTPUT_FULL);
  CHECK(n == 0 && marsenc_next_tile_row_height(enc) == tile);
  CHECK(marsenc_encode_tile_row(enc, rgb.data(), 0, out.data(), out.size(), &n) == MARSENC_OK);
  CHECK(std::memcmp(out.data(), whole.data() + 40, n) == 0);
  CHECK(marsenc_encode_tile_row(enc, rgb.data() + size_t(tile) * w * 3, 0, out.data(), out.size(), &n) == MARSENC_OK);
  CHECK(marsenc_next_tile_row_height(enc) == 0);
  CHECK(marsenc_encode_tile_row(enc, rgb.data(), 0, out.data(), out.size(), &n) == MARSENC_ERR_SEQUENCE);
  CHECK(marsenc_end(enc) == MARSENC_OK);

  // Bad geometry, quality and arguments are refused by begin.
  marsenc_geometry bad = g;
  bad.channels = 2;
  CHECK(marsenc_begin(enc, &bad, 60, out.data(), out.size(), &n) == MARSENC_ERR_IMAGE);
  bad = g;
  bad.bit_depth = 10;
  CHECK(marsenc_begin(enc, &bad, 60, out.data(), out.size(), &n) == MARSENC_ERR_IMAGE);
  bad = g;
  bad.height = 70000;
  CHECK(marsenc_begin(enc, &bad, 60, out.data(), out.size(), &n) == MARSENC_ERR_IMAGE);
  CHECK(marsenc_begin(enc, &g, 0, out.data(), out.size(), &n) == MARSENC_ERR_QUALITY);
  CHECK(marsenc_begin(enc, &g, 60, out.data(), 39, &n) == MARSENC_ERR_OUTPUT_FULL);
  CHECK(marsenc_begin(enc, nullptr, 60, out.data(), out.size(), &n) == MARSENC_ERR_ARGUMENT);
  CHECK(marsenc_next_tile_row_height(enc) == 0);  // none of these opened a stream
  CHECK(marsenc_begin(enc, &g, 60, out.data(), out.size(), &n) == MARSENC_OK);
  CHECK(marsenc_encode_tile_row(enc, rgb.data(), 5, out.data(), out.size(), &n) == MARSENC_ERR_IMAGE);  // stride < width*3
  CHECK(marsenc_encode_tile_row(enc, nullptr, 0, out.data(), out.size(), &n) == MARSENC_ERR_ARGUMENT);
  CHECK(marsenc_end(enc) == MARSENC_ERR_SEQUENCE);
}

// Rate control: the quality is the one a binary search over the file sizes
// of marsenc_encode picks (quality 1 first, then lo = 1, hi = 100, mid =
// (lo + hi + 1) / 2, as pymars.encode(target_bytes=...) does), the bytes are
// marsenc_encode's at that quality, nothing is allocated, and too small a
// target or buffer gives its status.
static void check_encode_to_size(marsenc_encoder* enc) {
  const uint32_t w = 80, h = 40;  // 2 tiles of 64, the second partial (few tiles: qemu runs this too)
  std::vector<uint8_t> rgb = test_image(w, h, 3);
  marsenc_image im = {rgb.data(), nullptr, w, h, 3, 8, 0};
  const size_t cap = marsenc_max_output_size(enc, w, h);
  std::vector<uint8_t> out(cap), want(cap);
  size_t sizes[101] = {};  // file size per quality, measured on demand
  auto size_at = [&](int q) {
    size_t n = 0;
    if (!sizes[q]) {
      CHECK(marsenc_encode(enc, &im, q, want.data(), cap, &n) == MARSENC_OK);
      sizes[q] = n;
    }
    return sizes[q];
  };
  // An independent statement of the search the C API must run.
  auto expected_quality = [&](size_t target) {
    if (size_at(1) > target) return 0;
    int lo = 1, hi = 100;
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (size_at(mid) <= target) lo = mid; else hi = mid - 1;
    }
    return lo;
  };
  // SIZE_MAX: no budget at all (the largest size_t, 32 bits on PowerPC).
  const size_t targets[] = {size_at(1), (size_at(1) + size_at(100)) / 2, size_at(60) - 1, size_at(100), SIZE_MAX};
  for (size_t target : targets) {
    const int q_want = expected_quality(target);
    CHECK(q_want >= 1);
    size_t n = 0, n_want = 0;
    int q = -1;
    const long before = g_allocations;
    // The buffer is the smaller of the target and the worst-case size: enough.
    const size_t buf = target < cap ? target : cap;
    CHECK(marsenc_encode_to_size(enc, &im, target, out.data(), buf, &n, &q) == MARSENC_OK);
    CHECK(g_allocations == before);  // no heap in the rate search either
    CHECK(q == q_want && n <= target);
    CHECK(marsenc_encode(enc, &im, q_want, want.data(), cap, &n_want) == MARSENC_OK);
    CHECK(n == n_want && std::memcmp(out.data(), want.data(), n) == 0);
  }
  // Quality 1 does not fit: MARSENC_ERR_TARGET, nothing reported.
  size_t n = 99;
  int q = 99;
  CHECK(marsenc_encode_to_size(enc, &im, size_at(1) - 1, out.data(), cap, &n, &q) == MARSENC_ERR_TARGET);
  CHECK(n == 0 && q == 0);
  CHECK(marsenc_encode_to_size(enc, &im, 0, out.data(), cap, &n, &q) == MARSENC_ERR_TARGET);
  // A buffer below both the target and the worst case could decide the quality: refused.
  CHECK(marsenc_encode_to_size(enc, &im, size_at(60), out.data(), size_at(60) - 1, &n, &q) == MARSENC_ERR_OUTPUT_FULL);
  // Bad arguments and images, as for marsenc_encode.
  CHECK(marsenc_encode_to_size(enc, &im, size_at(60), out.data(), cap, &n, nullptr) == MARSENC_ERR_ARGUMENT);
  CHECK(marsenc_encode_to_size(enc, nullptr, size_at(60), out.data(), cap, &n, &q) == MARSENC_ERR_ARGUMENT);
  marsenc_image bad_im = im;
  bad_im.channels = 2;
  CHECK(marsenc_encode_to_size(enc, &bad_im, size_at(60), out.data(), cap, &n, &q) == MARSENC_ERR_IMAGE);
  // Not while a tile-row stream is open.
  marsenc_geometry g = {w, h, 3, 8};
  CHECK(marsenc_begin(enc, &g, 50, out.data(), cap, &n) == MARSENC_OK);
  CHECK(marsenc_encode_to_size(enc, &im, size_at(60), out.data(), cap, &n, &q) == MARSENC_ERR_SEQUENCE);
  CHECK(marsenc_end(enc) == MARSENC_ERR_SEQUENCE);  // closes the incomplete stream
  CHECK(std::strstr(marsenc_status_message(MARSENC_ERR_TARGET), "quality 1") != nullptr);
}

// The header's version macros are the project's (CMakeLists.txt), and the
// library reports the header's ABI number.
static void check_version() {
  CHECK(marsenc_abi_version() == MARSENC_ABI_VERSION);
#ifdef PYMARS_PROJECT_VERSION_MAJOR
  CHECK(MARSENC_VERSION_MAJOR == PYMARS_PROJECT_VERSION_MAJOR);
  CHECK(MARSENC_VERSION_MINOR == PYMARS_PROJECT_VERSION_MINOR);
  CHECK(MARSENC_VERSION_PATCH == PYMARS_PROJECT_VERSION_PATCH);
#endif
}

// The arena does not depend on the image: one arena encodes a 4096 x 4096
// image's worth of tiles as well as a 64 x 64 one (sizes are checked, and a
// tall strip image is streamed through the same arena).
static void check_arena_is_image_independent(const std::vector<uint8_t>& blob, uint32_t tile) {
  const size_t a = marsenc_arena_size(blob.data(), blob.size(), tile);
  CHECK(a > 0);
  CHECK(marsenc_arena_size(blob.data(), blob.size(), tile) == a);  // a pure function of (blob, tile)
  CHECK(marsenc_arena_size(blob.data(), blob.size(), 2 * tile) > a);
  std::vector<uint8_t> arena(a);
  marsenc_encoder* enc = nullptr;
  CHECK(marsenc_init(arena.data(), arena.size(), blob.data(), blob.size(), tile, &enc) == MARSENC_OK);
  if (!enc) return;
  // A 64 x 1200 gray image is streamed with one strip buffer of 64 rows.
  const uint32_t w = 64, h = 1200;
  std::vector<uint8_t> strip(size_t(w) * tile);
  std::vector<uint8_t> out(marsenc_max_tile_row_size(enc, w));
  marsenc_geometry g = {w, h, 1, 8};
  size_t n = 0, total = 0;
  CHECK(marsenc_begin(enc, &g, 50, out.data(), out.size(), &n) == MARSENC_OK);
  total += n;
  pymars_test::TestRng rng(3);
  uint32_t rows_done = 0;
  for (uint32_t rows; (rows = marsenc_next_tile_row_height(enc)) > 0; rows_done += rows) {
    for (auto& v : strip) v = uint8_t(rng.below(256));
    CHECK(marsenc_encode_tile_row(enc, strip.data(), 0, out.data(), out.size(), &n) == MARSENC_OK);
    total += n;
  }
  CHECK(rows_done == h);
  CHECK(marsenc_end(enc) == MARSENC_OK);
  CHECK(total <= marsenc_max_output_size(enc, w, h));
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::printf("usage: %s BLOB\n", argv[0]);
    return 2;
  }
  std::vector<uint8_t> blob = read_file(argv[1]);
  CHECK(!blob.empty());
  if (blob.empty()) return 1;
  const uint32_t tile = 64;
  const size_t need = marsenc_arena_size(blob.data(), blob.size(), tile);
  CHECK(need > 0);
  CHECK(marsenc_arena_size(blob.data(), blob.size(), 40) == 0);  // not a multiple of 16

  // Too small an arena is refused.
  std::vector<uint8_t> small(need / 2);
  marsenc_encoder* enc = nullptr;
  CHECK(marsenc_init(small.data(), small.size(), blob.data(), blob.size(), tile, &enc) == MARSENC_ERR_ARENA);

  // A damaged blob is refused.
  std::vector<uint8_t> bad = blob;
  bad[0] = 'X';
  std::vector<uint8_t> arena(need);
  CHECK(marsenc_init(arena.data(), arena.size(), bad.data(), bad.size(), tile, &enc) == MARSENC_ERR_BLOB);
  CHECK(marsenc_init(arena.data(), arena.size(), blob.data(), blob.size() - 100, tile, &enc) == MARSENC_ERR_BLOB);

  CHECK(marsenc_init(arena.data(), arena.size(), blob.data(), blob.size(), tile, &enc) == MARSENC_OK);
  if (!enc) return 1;

  const uint32_t w = 150, h = 100;
  std::vector<uint8_t> img = test_image(w, h, 3);
  const size_t cap = marsenc_max_output_size(enc, w, h);
  std::vector<uint8_t> out1(cap), out2(cap);
  size_t n1 = 0, n2 = 0;
  marsenc_image im = {img.data(), nullptr, w, h, 3, 8, 0};

  const long before = g_allocations;
  CHECK(marsenc_encode(enc, &im, 60, out1.data(), cap, &n1) == MARSENC_OK);
  CHECK(marsenc_encode(enc, &im, 60, out2.data(), cap, &n2) == MARSENC_OK);
  CHECK(g_allocations == before);  // no heap after init
  CHECK(n1 == n2 && n1 > 40 && std::memcmp(out1.data(), out2.data(), n1) == 0);

  // Bad arguments: status codes, nothing written past the capacity.
  size_t n = 0;
  CHECK(marsenc_encode(enc, &im, 0, out1.data(), cap, &n) == MARSENC_ERR_QUALITY);
  CHECK(marsenc_encode(enc, &im, 101, out1.data(), cap, &n) == MARSENC_ERR_QUALITY);
  marsenc_image bad_im = im;
  bad_im.channels = 4;
  CHECK(marsenc_encode(enc, &bad_im, 50, out1.data(), cap, &n) == MARSENC_ERR_IMAGE);
  bad_im = im;
  bad_im.width = 0;
  CHECK(marsenc_encode(enc, &bad_im, 50, out1.data(), cap, &n) == MARSENC_ERR_IMAGE);
  bad_im = im;
  bad_im.pixels8 = nullptr;
  CHECK(marsenc_encode(enc, &bad_im, 50, out1.data(), cap, &n) == MARSENC_ERR_IMAGE);
  CHECK(marsenc_encode(enc, nullptr, 50, out1.data(), cap, &n) == MARSENC_ERR_ARGUMENT);
  std::vector<uint8_t> tight(n1 + 64, 0xAB);
  CHECK(marsenc_encode(enc, &im, 60, tight.data(), n1 - 1, &n) == MARSENC_ERR_OUTPUT_FULL);
  for (size_t i = n1 - 1; i < tight.size(); ++i) CHECK(tight[i] == 0xAB);

  // 16-bit and gray inputs encode too.
  std::vector<uint16_t> img16(size_t(w) * h);
  for (size_t i = 0; i < img16.size(); ++i) img16[i] = uint16_t(img[3 * i] * 257);
  marsenc_image im16 = {nullptr, img16.data(), w, h, 1, 16, 0};
  CHECK(marsenc_encode(enc, &im16, 50, out2.data(), cap, &n) == MARSENC_OK);

  check_streaming(enc, tile);
  check_encode_to_size(enc);
  check_version();
  check_arena_is_image_independent(blob, tile);

  // The decoder re-derives every table index and symbol of every tile.
  {
    pymars::Arena count;
    pymars::Model model;
    CHECK(pymars::load_model(blob.data(), blob.size(), count, &model) == pymars::BlobStatus::Ok);
    std::vector<uint8_t> mem(count.used());
    pymars::Arena a(mem.data(), mem.size());
    CHECK(pymars::load_model(blob.data(), blob.size(), a, &model) == pymars::BlobStatus::Ok);
    pymars::Arena wcount;
    pymars::EncoderWorkspace ews;
    pymars::DecoderWorkspace dws;
    pymars::make_encoder_workspace(model, tile, wcount, &ews);
    pymars::make_decoder_workspace(model, tile, wcount, &dws);
    std::vector<uint8_t> wmem(wcount.used());
    pymars::Arena wa(wmem.data(), wmem.size());
    CHECK(pymars::make_encoder_workspace(model, tile, wa, &ews));
    CHECK(pymars::make_decoder_workspace(model, tile, wa, &dws));
    pymars::FileHeader hdr;
    pymars::ParseStatus ps;
    CHECK(pymars::open_stream(model, out1.data(), n1, nullptr, 4096, &hdr, &ps) == pymars::OpenStatus::Ok);
    std::vector<pymars::TileSpan> spans(hdr.tile_count);
    const uint8_t* records = out1.data() + hdr.header_length;
    pymars::ScanSummary sum = pymars::scan_tile_records(records, n1 - hdr.header_length, hdr.tile_count, spans.data());
    CHECK(sum.tiles_present == hdr.tile_count);
    pymars::ImageInput ii;
    ii.pixels8 = img.data();
    ii.width = w;
    ii.height = h;
    ii.channels = 3;
    for (uint32_t i = 0; i < hdr.tile_count; ++i) {
      pymars::TileDims d;
      pymars::analyse_tile(model, pymars::tile_input(ii, tile, i), ews, &d);
      pymars::quantise_tile(model, ews, d, 60);
      std::vector<float> yhat(size_t(model.latent) * d.hy * d.wy);
      pymars::TileDims dd;
      CHECK(pymars::decode_tile_span(model, dws, hdr, records, spans[i], i, yhat.data(), &dd));
      const size_t ny = size_t(model.latent) * d.hy * d.wy;
      CHECK(std::memcmp(ews.index, dws.index, ny * 4) == 0);
      CHECK(std::memcmp(ews.symbols, dws.symbols, ny * 4) == 0);
      CHECK(std::memcmp(ews.mean_q4, dws.mean_q4, ny * 4) == 0);
    }
  }
  std::printf("%s: %d failure(s)\n", argv[0], pymars_test::failure_count());
  return pymars_test::failure_count() == 0 ? 0 : 1;
}
