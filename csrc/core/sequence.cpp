// sequence.cpp - see sequence.h.
#include "sequence.h"

namespace pymars {

namespace {

inline int32_t clampi(int64_t v, int64_t lo, int64_t hi) { return int32_t(v < lo ? lo : (v > hi ? hi : v)); }
inline uint32_t absd(int64_t v) { return uint32_t(v < 0 ? -v : v); }
inline uint32_t luma_channel(uint32_t channels) { return channels == 3 ? 1u : 0u; }  // G carries most of luma

// Box means of s x s blocks of the luma of an 8-bit frame into grid (gh x gw).
void box_luma(const uint8_t* px, size_t stride, uint32_t channels, uint32_t s, uint32_t gh, uint32_t gw,
              int32_t* grid) {
  const uint32_t lc = luma_channel(channels);
  for (uint32_t gy = 0; gy < gh; ++gy)
    for (uint32_t gx = 0; gx < gw; ++gx) {
      uint32_t sum = 0;
      for (uint32_t y = 0; y < s; ++y) {
        const uint8_t* row = px + size_t(gy * s + y) * stride + size_t(gx) * s * channels + lc;
        for (uint32_t x = 0; x < s; ++x) sum += row[size_t(x) * channels];
      }
      grid[size_t(gy) * gw + gx] = int32_t((sum + s * s / 2) / (s * s));
    }
}

// 4 x 4 box means of a grid.
void shrink4(const int32_t* g, uint32_t gw, int32_t* out, uint32_t oh, uint32_t ow) {
  for (uint32_t y = 0; y < oh; ++y)
    for (uint32_t x = 0; x < ow; ++x) {
      int32_t sum = 0;
      for (uint32_t i = 0; i < 4; ++i)
        for (uint32_t j = 0; j < 4; ++j) sum += g[size_t(4 * y + i) * gw + 4 * x + j];
      out[size_t(y) * ow + x] = (sum + 8) / 16;
    }
}

struct Match {
  int32_t u = 0, v = 0;
  int64_t score = -1;  // mean |a - b - offset| in 1/256 level; -1: no candidate yet
  int32_t offset = 0;
};

// How well grid a (new) matches grid b (reference) shifted by (u, v), a(y, x) ~
// b(y + u, x + v): the mean-removed absolute difference over the overlap divided
// by the overlap's own mean absolute deviation in both grids (in 1/4096). The
// division makes a featureless overlap (sky, a flat corner at the smallest
// allowed overlap) no better a match than its structure warrants: 0 is a
// perfect match, about 0.7 * 4096 two unrelated textures. -1 when the overlap
// is below min_count cells.
int64_t match_score(const int32_t* a, uint32_t ah, uint32_t aw, const int32_t* b, uint32_t bh, uint32_t bw, int32_t u,
                    int32_t v, uint32_t min_count, int32_t* offset) {
  const int32_t y_lo = u < 0 ? -u : 0, x_lo = v < 0 ? -v : 0;
  const int32_t y_hi = int32_t(ah) < int32_t(bh) - u ? int32_t(ah) : int32_t(bh) - u;
  const int32_t x_hi = int32_t(aw) < int32_t(bw) - v ? int32_t(aw) : int32_t(bw) - v;
  if (y_hi <= y_lo || x_hi <= x_lo) return -1;
  const uint32_t count = uint32_t(y_hi - y_lo) * uint32_t(x_hi - x_lo);
  if (count < min_count) return -1;
  int64_t sum_a = 0, sum_b = 0;
  for (int32_t y = y_lo; y < y_hi; ++y)
    for (int32_t x = x_lo; x < x_hi; ++x) {
      sum_a += a[size_t(y) * aw + x];
      sum_b += b[size_t(y + u) * bw + x + v];
    }
  const int64_t ma = (sum_a + count / 2) / count, mb = (sum_b + count / 2) / count;  // grids hold 0..255
  uint64_t sad = 0, dev = 0;
  for (int32_t y = y_lo; y < y_hi; ++y)
    for (int32_t x = x_lo; x < x_hi; ++x) {
      const int64_t va = a[size_t(y) * aw + x], vb = b[size_t(y + u) * bw + x + v];
      sad += absd(va - vb - (ma - mb));
      dev += absd(va - ma) + absd(vb - mb);
    }
  *offset = int32_t(ma - mb);
  return int64_t(sad * 4096 / (dev + count));
}

// Best shift over u in [u0, u1], v in [v0, v1]; ties go to the first in raster order.
Match best_match(const int32_t* a, uint32_t ah, uint32_t aw, const int32_t* b, uint32_t bh, uint32_t bw, int32_t u0,
                 int32_t u1, int32_t v0, int32_t v1, uint32_t min_count) {
  Match best;
  for (int32_t u = u0; u <= u1; ++u)
    for (int32_t v = v0; v <= v1; ++v) {
      int32_t off;
      const int64_t s = match_score(a, ah, aw, b, bh, bw, u, v, min_count, &off);
      if (s >= 0 && (best.score < 0 || s < best.score)) best = Match{u, v, s, off};
    }
  return best;
}

}  // namespace

FrameRegistration register_frame(const SequenceRef& ref, const uint8_t* pixels, uint32_t width, uint32_t height,
                                 uint32_t channels, size_t row_stride, int32_t* scratch) {
  FrameRegistration r;
  if (!ref.samples || !pixels || ref.width == 0 || ref.height == 0 || width == 0 || height == 0) return r;
  if (!row_stride) row_stride = size_t(width) * channels;
  // One block size for both frames, so that each grid has at most 128 x 128 cells.
  uint32_t big = width > height ? width : height;
  if (ref.width > big) big = ref.width;
  if (ref.height > big) big = ref.height;
  uint32_t s = (big + 127) / 128;
  if (s < 4) s = 4;
  const uint32_t ah = height / s, aw = width / s, bh = ref.height / s, bw = ref.width / s;
  if (ah < 8 || aw < 8 || bh < 8 || bw < 8) return r;  // too small to register at this scale
  int32_t *A = scratch, *B = scratch + 128 * 128, *A4 = B + 128 * 128, *B4 = A4 + 32 * 32;
  box_luma(pixels, row_stride, channels, s, ah, aw, A);
  box_luma(ref.samples, ref.stride(), ref.channels, s, bh, bw, B);
  const uint32_t ah4 = ah / 4, aw4 = aw / 4, bh4 = bh / 4, bw4 = bw / 4;
  shrink4(A, aw, A4, ah4, aw4);
  shrink4(B, bw, B4, bh4, bw4);
  // Coarse: every shift leaving at least 10 % of the new frame's cells overlapped;
  // the kCandidates best go on to the fine scale (a small overlap can match
  // well by chance at the coarse scale, where a cell is 4 s pixels wide).
  constexpr int kCandidates = 4;
  Match cand[kCandidates];
  const uint32_t min4 = (ah4 * aw4 + 9) / 10 > 4 ? (ah4 * aw4 + 9) / 10 : 4;
  for (int32_t u = -int32_t(ah4) + 1; u <= int32_t(bh4) - 1; ++u)
    for (int32_t v = -int32_t(aw4) + 1; v <= int32_t(bw4) - 1; ++v) {
      int32_t off;
      const int64_t sc = match_score(A4, ah4, aw4, B4, bh4, bw4, u, v, min4, &off);
      if (sc < 0) continue;
      // Insert into the sorted list (ties keep the earlier shift first).
      int k = kCandidates;
      while (k > 0 && (cand[k - 1].score < 0 || sc < cand[k - 1].score)) --k;
      if (k >= kCandidates) continue;
      for (int i = kCandidates - 1; i > k; --i) cand[i] = cand[i - 1];
      cand[k] = Match{u, v, sc, off};
    }
  if (cand[0].score < 0) return r;
  // Fine: +-6 cells around each candidate at scale s, and around no shift at all
  // (repeated pointings and stereo pairs overlap almost entirely); the best wins.
  const uint32_t min1 = (ah * aw + 9) / 10;
  Match f;
  for (int k = 0; k <= kCandidates; ++k) {
    const Match c = k < kCandidates ? cand[k] : Match{0, 0, 0, 0};
    if (c.score < 0) continue;
    const Match m = best_match(A, ah, aw, B, bh, bw, 4 * c.u - 6, 4 * c.u + 6, 4 * c.v - 6, 4 * c.v + 6, min1);
    if (m.score >= 0 && (f.score < 0 || m.score < f.score)) f = m;
  }
  if (f.score < 0) return r;
  // Usable when the overlap's residual is well below its own texture: below 0.3
  // of the two grids' summed deviation (bench/sequence_overlap_bound.py's "score
  // < 0.6 of the frame's spread" for two frames of equal spread).
  r.dy = f.u * int32_t(s);
  r.dx = f.v * int32_t(s);
  r.luma_offset = f.offset;
  r.search = int32_t(s / 2 + 2);
  r.usable = f.score * 10 < 3 * 4096;
  return r;
}

TileSequence refine_tile(const SequenceRef& ref, const FrameRegistration& reg, const uint8_t* tile, size_t stride,
                         uint32_t y0, uint32_t x0, uint32_t h, uint32_t w) {
  TileSequence best;
  if (!reg.usable || !ref.samples) return best;
  const uint32_t ch = ref.channels, lc = luma_channel(ch);
  const size_t rs = ref.stride();
  constexpr uint32_t kStep = 4;  // every 4th row and column: ~1/16 of the samples
  const uint32_t total = ((h + kStep - 1) / kStep) * ((w + kStep - 1) / kStep);
  uint64_t best_score = 0;
  bool found = false;
  for (int32_t ddy = -reg.search; ddy <= reg.search; ++ddy)
    for (int32_t ddx = -reg.search; ddx <= reg.search; ++ddx) {
      const int64_t oy = int64_t(y0) + reg.dy + ddy, ox = int64_t(x0) + reg.dx + ddx;  // tile (0, 0) in the reference
      uint64_t sad = 0;
      uint32_t count = 0;
      for (uint32_t y = 0; y < h; y += kStep) {
        const int64_t ry = oy + y;
        if (ry < 0 || ry >= int64_t(ref.height)) continue;
        for (uint32_t x = 0; x < w; x += kStep) {
          const int64_t rx = ox + x;
          if (rx < 0 || rx >= int64_t(ref.width)) continue;
          const int32_t a = tile[size_t(y) * stride + size_t(x) * ch + lc];
          const int32_t b = ref.samples[size_t(ry) * rs + size_t(rx) * ch + lc];
          sad += absd(int64_t(a) - b - reg.luma_offset);
          ++count;
        }
      }
      if (count * 16 < total) continue;  // below 1/16 of the tile
      const uint64_t score = sad * 4096 / count;
      if (!found || score < best_score) {
        found = true;
        best_score = score;
        best.dy = reg.dy + ddy;
        best.dx = reg.dx + ddx;
      }
    }
  if (!found) return best;
  // Offsets per channel: the mean difference over the covered samples (every 2nd).
  int64_t diff[3] = {0, 0, 0};
  uint32_t count = 0;
  for (uint32_t y = 0; y < h; y += 2) {
    const int64_t ry = int64_t(y0) + y + best.dy;
    if (ry < 0 || ry >= int64_t(ref.height)) continue;
    for (uint32_t x = 0; x < w; x += 2) {
      const int64_t rx = int64_t(x0) + x + best.dx;
      if (rx < 0 || rx >= int64_t(ref.width)) continue;
      for (uint32_t c = 0; c < ch; ++c)
        diff[c] += int32_t(tile[size_t(y) * stride + size_t(x) * ch + c]) - ref.samples[size_t(ry) * rs + size_t(rx) * ch + c];
      ++count;
    }
  }
  if (!count) return best;
  for (uint32_t c = 0; c < ch; ++c) {
    const int64_t d = diff[c];
    const int64_t m = d >= 0 ? (d + count / 2) / count : -((-d + count / 2) / count);
    best.offset[c] = clampi(m, -kMaxSequenceOffset, kMaxSequenceOffset);
  }
  best.predict = true;
  return best;
}

bool build_prediction(const SequenceRef& ref, const TileSequence& t, uint32_t y0, uint32_t x0, uint32_t h,
                      uint32_t w, uint8_t* pred, WvPrediction* wp) {
  if (!ref.samples || ref.width == 0 || ref.height == 0) return false;
  const int64_t oy = int64_t(y0) + t.dy, ox = int64_t(x0) + t.dx;
  // Rows and columns of the tile whose displaced position lies inside the reference.
  const int64_t vy0 = oy < 0 ? -oy : 0, vx0 = ox < 0 ? -ox : 0;
  const int64_t vy1 = int64_t(ref.height) - oy < int64_t(h) ? int64_t(ref.height) - oy : int64_t(h);
  const int64_t vx1 = int64_t(ref.width) - ox < int64_t(w) ? int64_t(ref.width) - ox : int64_t(w);
  if (vy0 >= vy1 || vx0 >= vx1) return false;
  const uint32_t ch = ref.channels;
  const size_t rs = ref.stride();
  for (uint32_t y = 0; y < h; ++y) {
    // Outside the reference the nearest covered sample is repeated, so that the
    // transform of the prediction sees no artificial edge.
    const int64_t ry = clampi(oy + y, oy + vy0, oy + vy1 - 1);
    for (uint32_t x = 0; x < w; ++x) {
      const int64_t rx = clampi(ox + x, ox + vx0, ox + vx1 - 1);
      const uint8_t* src = ref.samples + size_t(ry) * rs + size_t(rx) * ch;
      uint8_t* dst = pred + (size_t(y) * w + x) * ch;
      for (uint32_t c = 0; c < ch; ++c) dst[c] = uint8_t(clampi(int32_t(src[c]) + t.offset[c], 0, 255));
    }
  }
  wp->samples = pred;
  wp->vy0 = uint32_t(vy0);
  wp->vy1 = uint32_t(vy1);
  wp->vx0 = uint32_t(vx0);
  wp->vx1 = uint32_t(vx1);
  return true;
}

namespace {
inline void put32(uint8_t* p, int32_t v) {
  const uint32_t u = uint32_t(v);
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(u >> (8 * i));
}
inline int32_t get32(const uint8_t* p) {
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u |= uint32_t(p[i]) << (8 * i);
  return int32_t(u);
}
}  // namespace

size_t write_sequence_side(const TileSequence& t, uint32_t channels, uint8_t* out) {
  out[0] = kFormPredicted;
  put32(out + 1, t.dy);
  put32(out + 5, t.dx);
  for (uint32_t c = 0; c < channels; ++c) {
    const uint16_t u = uint16_t(int16_t(t.offset[c]));
    out[9 + 2 * c] = uint8_t(u & 0xFF);
    out[10 + 2 * c] = uint8_t(u >> 8);
  }
  return sequence_side_bytes(channels);
}

bool parse_sequence_side(const uint8_t* data, size_t len, uint32_t channels, TileSequence* t) {
  if (len < sequence_side_bytes(channels) || data[0] != kFormPredicted) return false;
  t->dy = get32(data + 1);
  t->dx = get32(data + 5);
  // Displacements beyond any image side are refused (no overflow downstream).
  if (t->dy < -65536 || t->dy > 65536 || t->dx < -65536 || t->dx > 65536) return false;
  for (uint32_t c = 0; c < channels; ++c) {
    const int32_t v = int16_t(uint16_t(data[9 + 2 * c] | (uint16_t(data[10 + 2 * c]) << 8)));
    if (v < -kMaxSequenceOffset || v > kMaxSequenceOffset) return false;
    t->offset[c] = v;
  }
  t->predict = true;
  return true;
}

}  // namespace pymars
