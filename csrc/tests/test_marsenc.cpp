// test_marsenc.cpp - the flight C API end to end, with a real weight blob.
//
//   test_marsenc BLOB
//
// Checks: the arena size query agrees with what init needs; a too-small arena
// and a damaged blob are refused with their status; encoding is
// deterministic; bad arguments give status codes (never an abort); the output
// capacity is never exceeded; no heap allocation happens after init; and the
// entropy decoder re-derives every symbol and table index of every tile.
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
