// bindings.cpp - the Python module pymars._core over the C++ core.
//
// This file is the only place where the core meets Python: it converts NumPy
// arrays and bytes, releases the GIL around heavy work, runs tiles on a small
// thread pool (results are assembled in tile order, so the bytes do not depend
// on the thread count) and turns status codes into Python exceptions. It may
// allocate (ground / test side); the flight path is csrc/core + marsenc.h.
// Encoding is the core's orchestration (encoder.h), the one marsenc.h runs:
// this file only spreads its tiles over threads.
#include <array>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "convert.h"
#include "core/arena.h"
#include "core/container.h"
#include "core/decoder.h"
#include "core/encoder.h"
#include "core/limits.h"
#include "core/wavelet.h"
#include "core/model.h"
#include "core/reference.h"
#include "core/tile_codec.h"

namespace py = pybind11;
using namespace pymars;

void bind_entropy(py::module_& m);
void bind_texture(py::module_& m);

namespace {

// A parsed model that owns its arena memory.
struct PyModel {
  std::vector<uint8_t> memory;
  Model model;
  size_t blob_size = 0;
};

std::shared_ptr<PyModel> load(py::bytes blob) {
  std::string b = blob;
  auto pm = std::make_shared<PyModel>();
  const uint8_t* data = reinterpret_cast<const uint8_t*>(b.data());
  Arena counting;
  BlobStatus st = load_model(data, b.size(), counting, &pm->model);
  if (st != BlobStatus::Ok) throw py::value_error(std::string("invalid weight blob: ") + blob_status_message(st));
  pm->memory.resize(counting.used());
  Arena arena(pm->memory.data(), pm->memory.size());
  st = load_model(data, b.size(), arena, &pm->model);
  if (st != BlobStatus::Ok) throw py::value_error(std::string("invalid weight blob: ") + blob_status_message(st));
  pm->blob_size = b.size();
  return pm;
}

// A parsed reference library (rover part) that owns its memory; it keeps its model alive.
struct PyLibrary {
  std::shared_ptr<PyModel> model;
  std::vector<uint8_t> memory;
  RefLibrary lib;
};

std::shared_ptr<PyLibrary> load_lib(std::shared_ptr<PyModel> pm, py::bytes rover) {
  std::string b = rover;
  auto pl = std::make_shared<PyLibrary>();
  pl->model = pm;
  const uint8_t* data = reinterpret_cast<const uint8_t*>(b.data());
  Arena counting;
  LibraryStatus st = load_library(data, b.size(), pm->model, counting, &pl->lib);
  if (st != LibraryStatus::Ok) throw py::value_error(std::string("invalid reference library: ") + library_status_message(st));
  pl->memory.resize(counting.used() + 16);
  Arena arena(pl->memory.data(), pl->memory.size());
  st = load_library(data, b.size(), pm->model, arena, &pl->lib);
  if (st != LibraryStatus::Ok) throw py::value_error(std::string("invalid reference library: ") + library_status_message(st));
  return pl;
}

const RefLibrary* library_of(const py::object& library, const std::shared_ptr<PyModel>& pm) {
  if (library.is_none()) return nullptr;
  auto pl = library.cast<std::shared_ptr<PyLibrary>>();
  if (pl->model.get() != pm.get() && std::memcmp(pl->lib.model_id, pm->model.sha256, 8) != 0)
    throw py::value_error("the reference library was built for another model");
  return &pl->lib;
}

// The 8-byte library hash a file names: the library's, else `library_hash`
// (bytes or None). Empty: none.
std::string library_hash_of(const RefLibrary* library, const py::object& library_hash) {
  if (library) return std::string(reinterpret_cast<const char*>(library->hash), 8);
  if (library_hash.is_none()) return std::string();
  std::string h = library_hash.cast<py::bytes>();
  if (h.size() != 8) throw py::value_error("library_hash must be 8 bytes");
  return h;
}

// A frame already sent (sequence coding, docs/bitstream.md §4.10) as the core
// reads it: the decoded samples (kept alive here, read in place) and the id of
// its file. `reference`: None, or (samples, id) with samples an (H, W) or
// (H, W, C) uint8 array in the model's channels and id 8 bytes.
struct PySequenceRef {
  py::array samples;
  SequenceRef ref;
};

std::unique_ptr<PySequenceRef> sequence_ref_of(const py::object& reference, const Model& m) {
  if (reference.is_none()) return nullptr;
  auto t = reference.cast<py::tuple>();
  if (t.size() != 2) throw py::value_error("reference must be (samples, id)");
  auto r = std::make_unique<PySequenceRef>();
  py::array a = t[0].cast<py::array>();
  if (!py::isinstance<py::array_t<uint8_t>>(a) || (a.ndim() != 2 && a.ndim() != 3))
    throw py::value_error("the earlier frame must be an (H, W) or (H, W, C) uint8 array");
  r->samples = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(a);
  const uint32_t c = a.ndim() == 3 ? uint32_t(a.shape(2)) : 1u;
  if (c != m.in_channels)
    throw py::value_error("the earlier frame has " + std::to_string(c) + " channel(s), the model takes " +
                          std::to_string(m.in_channels));
  if (a.shape(0) == 0 || a.shape(1) == 0 || a.shape(0) > kMaxImageSide || a.shape(1) > kMaxImageSide)
    throw py::value_error("the earlier frame must be 1..65535 x 1..65535 pixels");
  const std::string id = t[1].cast<py::bytes>();
  if (id.size() != 8) throw py::value_error("the earlier frame's id must be 8 bytes");
  r->ref.samples = static_cast<const uint8_t*>(r->samples.data());
  r->ref.height = uint32_t(a.shape(0));
  r->ref.width = uint32_t(a.shape(1));
  r->ref.channels = c;
  std::memcpy(r->ref.id, id.data(), 8);
  return r;
}

// A workspace with its own memory (one per worker thread).
template <typename WS>
struct OwnedWorkspace {
  std::vector<uint8_t> memory;
  WS ws;
};

template <typename WS>
std::unique_ptr<OwnedWorkspace<WS>> owned_workspace(const Model& m, uint32_t tile,
                                                    bool (*make)(const Model&, uint32_t, Arena&, WS*)) {
  auto o = std::make_unique<OwnedWorkspace<WS>>();
  Arena counting;
  make(m, tile, counting, &o->ws);
  o->memory.resize(counting.used());
  Arena a(o->memory.data(), o->memory.size());
  if (!make(m, tile, a, &o->ws)) throw std::runtime_error("workspace set-up failed");
  return o;
}
auto encoder_workspace(const Model& m, uint32_t tile) { return owned_workspace(m, tile, make_encoder_workspace); }
auto decoder_workspace(const Model& m, uint32_t tile) { return owned_workspace(m, tile, make_decoder_workspace); }

// Ctrl-C and progress while a tile loop runs with the GIL released.
//
// Python runs signal handlers only between bytecodes, so without this a Ctrl-C
// (or the CLI's SIGTERM handler) waited for the whole encode, 30 s on 8 Mpx.
// The thread that called in takes the GIL between tiles (one worker) or every
// 50 ms (thread pool), runs the pending signal handlers and reports the tiles
// done to `pymars._core.tile_progress` (a callable taking the number of tiles
// finished since its last call, or None). Once a handler or the callback
// raised, no new tile starts and the exception propagates when the loop
// returns: an encode stops within one tile. The bytes never depend on it.
class TileLoopControl {
 public:
  // With the GIL held.
  TileLoopControl() : progress_(py::getattr(py::module_::import("pymars._core"), "tile_progress", py::none())) {}

  // Without the GIL; false once Python has an exception pending.
  bool poll(uint32_t done) {
    if (failed_) return false;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      failed_ = true;
      return false;
    }
    if (!progress_.is_none() && done > reported_) {
      PyObject* r = PyObject_CallFunction(progress_.ptr(), "I", unsigned(done - reported_));
      if (!r) {
        failed_ = true;
        return false;
      }
      Py_DECREF(r);
      reported_ = done;
    }
    return true;
  }

  // With the GIL held, after the loop: raise what a signal handler or the callback raised.
  void rethrow_if_failed() const {
    if (failed_) throw py::error_already_set();
  }

 private:
  py::object progress_;
  uint32_t reported_ = 0;
  bool failed_ = false;
};

// Runs fn(tile_index, worker) for every tile on `threads` workers (called with
// the GIL released). With `control`, stops taking tiles once it fails.
template <typename Fn>
void parallel_tiles(uint32_t n, int threads, Fn fn, TileLoopControl* control = nullptr) {
  threads = std::max(1, std::min<int>(threads, int(n)));
  if (threads == 1) {
    for (uint32_t i = 0; i < n; ++i) {
      if (control && !control->poll(i)) return;
      fn(i, 0);
    }
    if (control) control->poll(n);
    return;
  }
  std::atomic<uint32_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::mutex m;
  std::condition_variable cv;
  int finished = 0;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (uint32_t i = next++; i < n && !stop.load(); i = next++) {
        fn(i, t);
        ++done;
      }
      {
        std::lock_guard<std::mutex> lock(m);
        ++finished;
      }
      cv.notify_one();
    });
  if (control) {
    std::unique_lock<std::mutex> lock(m);
    while (!cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return finished == threads; })) {
      lock.unlock();
      if (!control->poll(done.load())) stop = true;
      lock.lock();
    }
  }
  for (auto& th : pool) th.join();
  if (control && !stop.load()) control->poll(n);
}

// Image arguments from a NumPy array (H, W) or (H, W, C), uint8 or uint16.
struct ImageArg {
  py::array arr;
  ImageInput img;
};

ImageArg image_arg(py::array array, int bit_depth) {
  ImageArg a;
  if (array.ndim() != 2 && array.ndim() != 3)
    throw py::value_error("image must have shape (H, W) or (H, W, C), got " + std::to_string(array.ndim()) + " dims");
  const bool is8 = py::isinstance<py::array_t<uint8_t>>(array);
  const bool is16 = py::isinstance<py::array_t<uint16_t>>(array);
  if (!is8 && !is16) throw py::value_error("image dtype must be uint8 or uint16");
  if (is8) {
    a.arr = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(array);
    if (bit_depth != 0 && bit_depth != 8) throw py::value_error("uint8 images have bit_depth 8");
    a.img.bit_depth = 8;
    a.img.pixels8 = static_cast<const uint8_t*>(a.arr.data());
  } else {
    a.arr = py::array_t<uint16_t, py::array::c_style | py::array::forcecast>::ensure(array);
    if (bit_depth == 0) bit_depth = 16;
    if (bit_depth != 12 && bit_depth != 16) throw py::value_error("uint16 images need bit_depth 12 or 16");
    a.img.bit_depth = uint32_t(bit_depth);
    a.img.pixels16 = static_cast<const uint16_t*>(a.arr.data());
  }
  a.img.height = uint32_t(array.shape(0));
  a.img.width = uint32_t(array.shape(1));
  a.img.channels = array.ndim() == 3 ? uint32_t(array.shape(2)) : 1;
  if (array.shape(0) == 0 || array.shape(1) == 0) throw py::value_error("image is empty");
  if (array.shape(0) > kMaxImageSide || array.shape(1) > kMaxImageSide) throw py::value_error("image side above 65535 pixels");
  if (a.img.channels != 1 && a.img.channels != 3)
    throw py::value_error("image must have 1 or 3 channels, got " + std::to_string(a.img.channels));
  return a;
}

std::vector<uint16_t> ref_list(py::object refs, uint32_t tiles) {
  std::vector<uint16_t> v;
  if (refs.is_none()) return v;
  for (auto r : refs) v.push_back(r.cast<uint16_t>());
  if (v.size() != tiles) throw py::value_error("one reference id per tile is required");
  return v;
}

// The core's encoder orchestration (encoder.h) on the thread pool: every tile
// goes through prepare_tile() / code_tile_record() in a worker with its own
// workspace, the records are kept per tile (so the bytes do not depend on the
// thread count) and joined behind the core's file header, and rate control is
// the core's search_quality(). Only threads, buffers and exceptions are added here.
class ImageEncoder {
 public:
  ImageEncoder(std::shared_ptr<PyModel> pm, py::array image, uint32_t tile_size, int bit_depth, int threads,
               py::object library_hash, py::object entropy_refs, py::object decoder_refs, py::object library,
               bool source_depth = false, py::object reference = py::none())
      : pm_(std::move(pm)), arg_(image_arg(image, bit_depth)), threads_(threads) {
    const Model& m = pm_->model;
    opt_.quality = kMinQuality;  // a placeholder for the argument check: encode() checks the real one
    opt_.source_depth = source_depth;
    seq_ = sequence_ref_of(reference, m);
    opt_.sequence = seq_ ? &seq_->ref : nullptr;
    opt_.tile_size = tile_size;
    opt_.library = library_of(library, pm_);
    n_ = expected_tile_count(arg_.img.width, arg_.img.height, tile_size ? tile_size : 1);
    eref_ = ref_list(entropy_refs, n_);
    dref_ = ref_list(decoder_refs, n_);
    opt_.entropy_refs = eref_.empty() ? nullptr : eref_.data();
    opt_.decoder_refs = dref_.empty() ? nullptr : dref_.data();
    library_hash_ = library_hash_of(opt_.library, library_hash);
    if (!library_hash_.empty()) opt_.library_hash = reinterpret_cast<const uint8_t*>(library_hash_.data());
    const EncodeStatus st = check_encode_arguments(arg_.img, opt_, kMaxTileSize, m.in_channels);
    if (st != EncodeStatus::Ok) throw py::value_error(encode_status_message(st));
    records_.resize(n_);
    for (int t = 0; t < std::max(1, std::min<int>(threads, int(n_))); ++t)
      workers_.push_back(Worker{encoder_workspace(m, tile_size),
                                std::vector<uint8_t>(max_tile_record_bytes(m, tile_size))});
    if (opt_.sequence) {  // the whole-frame alignment, once, on the first worker's scratch
      py::gil_scoped_release nogil;
      plan_sequence(workers_[0].ws->ws, arg_.img, &opt_);
    }
  }

  // The whole-frame alignment with the earlier frame (sequence coding), as a dict.
  py::dict registration() const {
    py::dict d;
    d["dy"] = opt_.registration.dy;
    d["dx"] = opt_.registration.dx;
    d["luma_offset"] = opt_.registration.luma_offset;
    d["usable"] = opt_.registration.usable;
    return d;
  }

  // One quality: each tile prepared and coded in one pass (encode_image()'s loop).
  py::bytes encode(int quality) {
    if (quality < 0 || !valid_quality(uint32_t(quality)))
      throw py::value_error(encode_status_message(EncodeStatus::BadQuality));
    const bool analyse = needs_analysis(pm_->model, uint32_t(quality));
    run_tiles([&](uint32_t i, Worker& w) {
      PreparedTile t;
      prepare_tile(pm_->model, w.ws->ws, arg_.img, opt_, i, 0, analyse, &t);
      return code_record(i, w, t, uint32_t(quality));
    });
    return assemble(uint32_t(quality));
  }

  // Rate control: each tile prepared once (its analysis kept), then coded at
  // the qualities search_quality() asks for. Returns (bytes, quality).
  py::tuple encode_to_size(size_t target_bytes) {
    const Model& m = pm_->model;
    const bool analyse = !m.all_sample_coded();  // the wavelet defaults need no learned analysis
    tiles_.assign(n_, PreparedTile{});
    saved_.assign(n_, std::vector<uint8_t>());
    run_tiles([&](uint32_t i, Worker& w) {
      prepare_tile(m, w.ws->ws, arg_.img, opt_, i, 0, analyse, &tiles_[i]);
      saved_[i].resize(tile_analysis_bytes(m, tiles_[i]));
      save_tile_analysis(m, w.ws->ws, tiles_[i], saved_[i].data());
      return EncodeStatus::Ok;
    });
    // No exception may cross the core (built without them): the probe keeps it for after the search.
    auto probe = [](void* self, uint32_t quality, size_t* bytes) {
      ImageEncoder& e = *static_cast<ImageEncoder*>(self);
      try {
        *bytes = e.code_all(quality);
        return EncodeStatus::Ok;
      } catch (...) {
        e.error_ = std::current_exception();
        return EncodeStatus::Cancelled;
      }
    };
    uint32_t q;
    size_t min_bytes;
    const EncodeStatus st = search_quality(target_bytes, probe, this, &q, &min_bytes);
    if (st == EncodeStatus::Cancelled) std::rethrow_exception(error_);  // Ctrl-C, the progress callback, memory
    if (st == EncodeStatus::TargetTooSmall)
      throw py::value_error("target_bytes too small: quality 1 needs " + std::to_string(min_bytes) + " bytes");
    if (st != EncodeStatus::Ok) throw std::runtime_error(encode_status_message(st));
    if (coded_ != q) code_all(q);  // the last probe was another quality
    return py::make_tuple(assemble(q), q);
  }

 private:
  struct Worker {
    std::unique_ptr<OwnedWorkspace<EncoderWorkspace>> ws;
    std::vector<uint8_t> record;  // room for one record (max_tile_record_bytes())
  };

  // fn(tile, worker) -> EncodeStatus on every tile with the GIL released;
  // raises the first failure in tile order, or what Ctrl-C / the progress callback raised.
  template <typename Fn>
  void run_tiles(Fn fn) {
    std::vector<EncodeStatus> status(n_, EncodeStatus::Ok);
    TileLoopControl control;
    {
      py::gil_scoped_release nogil;
      parallel_tiles(n_, threads_, [&](uint32_t i, int w) { status[i] = fn(i, workers_[size_t(w)]); }, &control);
    }
    control.rethrow_if_failed();
    for (EncodeStatus s : status)
      if (s != EncodeStatus::Ok) throw std::runtime_error(encode_status_message(s));
  }

  EncodeStatus code_record(uint32_t i, Worker& w, const PreparedTile& t, uint32_t quality) {
    size_t n;
    const EncodeStatus st = code_tile_record(pm_->model, w.ws->ws, t, quality, w.record.data(), w.record.size(), &n);
    records_[i].assign(w.record.data(), w.record.data() + n);
    return st;
  }

  // Every kept tile coded at `quality` into records_; returns the file's size.
  size_t code_all(uint32_t quality) {
    run_tiles([&](uint32_t i, Worker& w) {
      restore_tile_analysis(pm_->model, w.ws->ws, tiles_[i], saved_[i].data());
      return code_record(i, w, tiles_[i], quality);
    });
    coded_ = quality;
    size_t total = make_file_header(pm_->model, arg_.img, opt_).header_length;  // whatever the quality
    for (const auto& r : records_) total += r.size();
    return total;
  }

  // The core's file header, then the records in tile order.
  py::bytes assemble(uint32_t quality) const {
    EncodeOptions o = opt_;
    o.quality = quality;
    const FileHeader h = make_file_header(pm_->model, arg_.img, o);
    std::string out(h.header_length, '\0');
    write_file_header(h, reinterpret_cast<uint8_t*>(&out[0]), out.size());
    for (const auto& r : records_) out.append(reinterpret_cast<const char*>(r.data()), r.size());
    return py::bytes(out);
  }

  std::shared_ptr<PyModel> pm_;
  ImageArg arg_;  // keeps the pixels alive
  std::unique_ptr<PySequenceRef> seq_;  // the earlier frame (sequence coding), or null
  int threads_;
  EncodeOptions opt_;
  std::string library_hash_;
  std::vector<uint16_t> eref_, dref_;
  uint32_t n_ = 0;
  std::vector<Worker> workers_;
  std::vector<std::vector<uint8_t>> records_;  // per tile, at quality coded_
  std::vector<PreparedTile> tiles_;            // rate control: per tile, prepare_tile()'s result
  std::vector<std::vector<uint8_t>> saved_;    // and its save_tile_analysis()
  uint32_t coded_ = 0;
  std::exception_ptr error_;
};

template <typename T>
py::array_t<T> array3(const T* data, uint32_t c, uint32_t h, uint32_t w) {
  py::array_t<T> a({size_t(c), size_t(h), size_t(w)});
  std::memcpy(a.mutable_data(), data, sizeof(T) * size_t(c) * h * w);
  return a;
}

// A file opened for decoding, tile range by tile range (see the DecodeStream
// docstring below). It keeps the Python bytes object alive and reads it in
// place: no copy of the file is made.
class DecodeStream {
 public:
  // `parsed`: the header of `data` as parse_file_header() gave it (ParsedFile),
  // so that it is not parsed again; null: parse it here.
  DecodeStream(std::shared_ptr<PyModel> pm, py::bytes data, const FileHeader* parsed, py::object library_hash,
               py::object library, py::object reference = py::none())
      : pm_(std::move(pm)), data_(std::move(data)), library_(library) {
    bytes_ = reinterpret_cast<const uint8_t*>(PYBIND11_BYTES_AS_STRING(data_.ptr()));
    len_ = size_t(PYBIND11_BYTES_SIZE(data_.ptr()));
    reflib_ = library_of(library, pm_);
    const std::string lib = library_hash_of(reflib_, library_hash);
    const uint8_t* lib_hash = lib.empty() ? nullptr : reinterpret_cast<const uint8_t*>(lib.data());
    ParseStatus ps = ParseStatus::kOk;
    if (parsed) h_ = *parsed;
    const OpenStatus os = parsed ? check_stream_header(pm_->model, h_, lib_hash, kMaxTileSize)
                                 : open_stream(pm_->model, bytes_, len_, lib_hash, kMaxTileSize, &h_, &ps);
    if (os == OpenStatus::BadHeader)
      throw py::value_error(std::string("not a valid pymars file: ") + parse_status_message(ps));
    if (os != OpenStatus::Ok) throw py::value_error(open_status_message(os));
    seq_ = sequence_ref_of(reference, pm_->model);
    const OpenStatus ss = check_sequence_reference(pm_->model, h_, seq_ ? &seq_->ref : nullptr);
    if (ss != OpenStatus::Ok) throw py::value_error(open_status_message(ss));
    records_ = bytes_ + h_.header_length;
    const size_t records_len = len_ - h_.header_length;
    // docs/bitstream.md §3, "Decoder limits": nothing sized by the header is
    // allocated before the file has shown one decodable tile record.
    // CRC checkpoints keep the record search linear in the file (container.h); their
    // size follows the file's length, not the header.
    checkpoints_.resize(crc_checkpoint_count(records_len));
    bool any;
    {
      py::gil_scoped_release nogil;
      make_crc_checkpoints(records_, records_len, checkpoints_.data());
      any = has_valid_tile_record(records_, records_len, h_.tile_count, checkpoints_.data());
    }
    if (!any) {
      const std::string size = std::to_string(h_.width) + "x" + std::to_string(h_.height);
      throw py::value_error(
          (records_len < kTileRecordHeaderBytes ? "the file holds no tile record (" : "the file holds no valid tile record (") +
          std::to_string(records_len) + " bytes after its header; a complete " + size + " file of " +
          std::to_string(h_.tile_count) + " tile(s) has at least " + std::to_string(min_complete_file_bytes(h_)) +
          "): nothing to decode");
    }
    spans_.resize(h_.tile_count);
    {
      py::gil_scoped_release nogil;
      sum_ = scan_tile_records(records_, records_len, h_.tile_count, spans_.data(), checkpoints_.data());
    }
    checkpoints_ = std::vector<uint32_t>();
  }

  uint32_t tile_count() const { return h_.tile_count; }

  py::dict header() const { return header_as_dict(h_); }

  py::dict summary() const {
    py::dict d;
    d["tiles_present"] = sum_.tiles_present;
    d["records_damaged"] = sum_.records_damaged;
    d["records_ignored"] = sum_.records_ignored;
    d["bytes_skipped"] = sum_.bytes_skipped;
    d["trailing_bytes"] = sum_.trailing_bytes;
    d["file_bytes"] = len_;
    d["min_complete_file_bytes"] = min_complete_file_bytes(h_);
    return d;
  }

  py::list decode(uint32_t first, uint32_t count, int threads) {
    if (first > h_.tile_count || count > h_.tile_count - first) throw py::value_error("tile range outside the file");
    const Model& m = pm_->model;
    const bool nl = m.sample_coded(h_.quality);  // near-lossless and wavelet qualities decode samples, not latents
    const uint32_t depth = sample_depth_of(h_);    // 12/16: source-depth near-lossless samples (§4.8)
    const int nthreads = std::max(1, std::min<int>(threads, int(std::max<uint32_t>(count, 1))));
    // The workspace fits the largest tile of this image, not the header's tile_size alone: a
    // 40 x 40 image that claims 4096-pixel tiles gets a 48-pixel workspace.
    const uint32_t side = std::min<uint32_t>(h_.tile_size, (std::max(h_.width, h_.height) + 15) / 16 * 16);
    while (int(workspaces_.size()) < nthreads) workspaces_.push_back(decoder_workspace(m, side));
    std::vector<std::vector<float>> yhat(count);
    std::vector<std::vector<uint8_t>> pixels(nl && depth == 8 ? count : 0);
    std::vector<std::vector<uint16_t>> pixels16(nl && depth != 8 ? count : 0);
    std::vector<char> ok(count, 0);
    std::vector<TileDims> dims(count);
    std::vector<std::array<uint16_t, 3>> means(count);
    TileLoopControl control;
    {
      py::gil_scoped_release nogil;
      parallel_tiles(count, nthreads, [&](uint32_t k, int w) {
        const uint32_t i = first + k;
        if (spans_[i].state != TileState::kPresent) return;
        uint32_t y0, x0, th, tw;
        tile_origin(h_, i, &y0, &x0, &th, &tw);
        const TileDims td = tile_dims(th, tw);
        DecoderWorkspace& ws = workspaces_[size_t(w)]->ws;
        if (!nl) yhat[k].resize(size_t(m.latent) * td.hy * td.wy);
        ok[k] = decode_tile_span(m, ws, h_, records_, spans_[i], i, nl ? nullptr : yhat[k].data(), &dims[k], reflib_,
                                 seq_ ? &seq_->ref : nullptr);
        for (int c = 0; c < 3; ++c) means[k][c] = ws.tile_mean[c];
        if (nl && ok[k] && depth == 8) pixels[k].assign(ws.samples, ws.samples + size_t(th) * tw * m.in_channels);
        if (nl && ok[k] && depth != 8) pixels16[k].assign(ws.samples16, ws.samples16 + size_t(th) * tw * m.in_channels);
      }, &control);
    }
    control.rethrow_if_failed();
    py::list tiles;
    for (uint32_t k = 0; k < count; ++k) {
      const uint32_t i = first + k;
      uint32_t y0, x0, th, tw;
      tile_origin(h_, i, &y0, &x0, &th, &tw);
      py::dict t;
      t["index"] = i;
      t["y0"] = y0;
      t["x0"] = x0;
      t["height"] = th;
      t["width"] = tw;
      t["entropy_ref"] = spans_[i].entropy_ref;
      t["decoder_ref"] = spans_[i].decoder_ref;
      t["tile_mean"] = py::none();
      t["pixels"] = py::none();
      t["y_hat"] = py::none();
      if (!ok[k]) {
        t["status"] = spans_[i].state == TileState::kMissing ? "missing" : "damaged";
      } else {
        t["status"] = "ok";
        if (nl) {
          // (h, w, in_channels) uint8: the decoded samples of a near-lossless tile; uint16 at
          // the file's bit depth for a source-depth file (header flag bit 1).
          if (depth == 8)
            t["pixels"] = array3<uint8_t>(pixels[k].data(), th, tw, m.in_channels);
          else
            t["pixels"] = array3<uint16_t>(pixels16[k].data(), th, tw, m.in_channels);
        } else {
          t["y_hat"] = array3<float>(yhat[k].data(), m.latent, dims[k].hy, dims[k].wy);
          if (m.tile_means) {  // the tile's mean per model channel in 1/16 level
            py::list tm;
            for (uint32_t c = 0; c < m.in_channels; ++c) tm.append(means[k][c]);
            t["tile_mean"] = tm;
          }
        }
      }
      tiles.append(t);
    }
    return tiles;
  }

 private:
  std::shared_ptr<PyModel> pm_;
  py::bytes data_;
  py::object library_;  // keeps the ReferenceLibraryCore that reflib_ points into alive
  const uint8_t* bytes_ = nullptr;
  size_t len_ = 0;
  const RefLibrary* reflib_ = nullptr;
  std::unique_ptr<PySequenceRef> seq_;  // the earlier frame of a sequence-coded file, or null
  FileHeader h_;
  const uint8_t* records_ = nullptr;
  std::vector<uint32_t> checkpoints_;
  std::vector<TileSpan> spans_;
  ScanSummary sum_;
  std::vector<std::unique_ptr<OwnedWorkspace<DecoderWorkspace>>> workspaces_;
};

// A file whose header is parsed once (pymars._core.open_file): the header
// dict for the caller's checks (model, library, pixel limit), then a
// DecodeStream over the same bytes without a second parse.
struct ParsedFile {
  py::bytes data;  // the whole file, kept alive, never copied
  FileHeader header;
};

}  // namespace

// The (H, W) or (H, W, 3) uint8 tile of the prior-counting functions (wavelet_bin_counts,
// nl_bin_counts): its sides and channels, or a one-line ValueError.
static void training_tile_shape(const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& tile, uint32_t* h,
                         uint32_t* w, uint32_t* c) {
  if (tile.ndim() != 2 && !(tile.ndim() == 3 && tile.shape(2) == 3))
    throw py::value_error("tile must be (H, W) or (H, W, 3) uint8");
  *h = uint32_t(tile.shape(0));
  *w = uint32_t(tile.shape(1));
  *c = tile.ndim() == 3 ? 3u : 1u;
  if (*h == 0 || *w == 0 || *h > kMaxTileSize || *w > kMaxTileSize)
    throw py::value_error("tile must be 1..4096 on each side");
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "pymars C++ core: encoder, bit-exact entropy parameters, rANS, container";
  // Progress of encode / encode_to_target / decode_latents: a callable taking the
  // number of tiles finished since its last call, or None (TileLoopControl).
  m.attr("tile_progress") = py::none();
  bind_entropy(m);
  bind_texture(m);
  // The parameter ranges of limits.h, so that Python checks what the core checks.
  m.attr("MIN_QUALITY") = kMinQuality;
  m.attr("MAX_QUALITY") = kMaxQuality;
  m.attr("MAX_SIDE") = kMaxImageSide;
  m.attr("MIN_TILE_SIZE") = kMinTileSize;
  m.attr("MAX_TILE_SIZE") = kMaxTileSize;
  m.attr("TILE_SIZE_STEP") = kTileSizeStep;

  py::class_<PyModel, std::shared_ptr<PyModel>>(m, "Model", "A parsed encoder weight blob (*.pmw)")
      .def(py::init(&load), py::arg("blob"))
      .def_property_readonly("model_id",
                             [](const PyModel& p) { return py::bytes(reinterpret_cast<const char*>(p.model.sha256), 8); })
      .def_property_readonly("sha256",
                             [](const PyModel& p) { return py::bytes(reinterpret_cast<const char*>(p.model.sha256), 32); })
      .def_property_readonly("in_channels", [](const PyModel& p) { return p.model.in_channels; })
      .def_property_readonly("tile_means", [](const PyModel& p) { return p.model.tile_means; })
      .def("quality_for_max_error",
           [](const PyModel& p, uint32_t max_error, uint32_t bit_depth) -> py::object {
             const uint32_t q = p.model.quality_for_max_error(max_error, bit_depth);
             return q ? py::object(py::int_(q)) : py::object(py::none());
           },
           py::arg("max_error"), py::arg("bit_depth") = 8,
           "The cheapest quality whose samples are all within +-max_error (12/16-bit: coded at that depth), or None\n"
           "(the core's choice, shared with marsenc_encode_max_error)")
      .def("near_lossless_error",
           [](const PyModel& p, uint32_t q) -> py::object {
             if (!p.model.near_lossless(q)) return py::none();
             return py::int_(p.model.nl_k[q - 1]);
           },
           py::arg("quality"), "Maximum absolute error of a near-lossless quality (None: the learned path)")
      .def_property_readonly("near_lossless_coder",
                             [](const PyModel& p) -> py::object {
                               if (!p.model.has_nl) return py::none();
                               return py::str(p.model.nl_coder == NlCoder::Arith2  ? "arith2"
                                              : p.model.nl_coder == NlCoder::Arith ? "arith"
                                                                                   : "golomb");
                             },
                             "Entropy coder of the near-lossless qualities: 'arith2' (§4.8, Arith2: learned contexts),\n"
                             "'arith' (§4.8: 12/16-bit samples too), 'golomb' (§4.7), or None")
      .def("wavelet_step",
           [](const PyModel& p, uint32_t q) -> py::object {
             if (!p.model.wavelet(q)) return py::none();
             return py::float_(p.model.wv_step[q - 1] / 16.0);
           },
           py::arg("quality"), "Quantiser step (8-bit levels) of a wavelet quality (None: not one)")
      .def_property_readonly("latent_channels", [](const PyModel& p) { return p.model.latent; })
      .def_property_readonly("hyper_channels", [](const PyModel& p) { return p.model.hyper; })
      .def_property_readonly("scale_levels", [](const PyModel& p) { return p.model.scale_levels; })
      .def_property_readonly("arena_bytes", [](const PyModel& p) { return p.memory.size(); });

  py::class_<PyLibrary, std::shared_ptr<PyLibrary>>(
      m, "ReferenceLibraryCore", "The rover part of a REMAC reference library, parsed for one model")
      .def(py::init(&load_lib), py::arg("model"), py::arg("rover_part"))
      .def_property_readonly("library_hash",
                             [](const PyLibrary& p) { return py::bytes(reinterpret_cast<const char*>(p.lib.hash), 8); })
      .def_property_readonly("count", [](const PyLibrary& p) { return p.lib.count; })
      .def_property_readonly("arena_bytes", [](const PyLibrary& p) { return p.memory.size(); });

  m.def(
      "select_references",
      [](std::shared_ptr<PyModel> pm, std::shared_ptr<PyLibrary> pl, py::array tile) {
        ImageArg a = image_arg(tile, 0);
        if (a.img.width > kMaxTileSize || a.img.height > kMaxTileSize) throw py::value_error("tile larger than 4096");
        const Model& m = pm->model;
        if (!m.has_ref) throw py::value_error("the model has no reference branch");
        uint32_t side = (std::max(a.img.width, a.img.height) + 15) / 16 * 16;
        auto ow = encoder_workspace(m, side);
        TileDims d;
        ReferenceChoice rc;
        rc.library = library_of(py::cast(pl), pm);
        analyse_tile(m, tile_input(a.img, side, 0), ow->ws, &d, rc);
        py::array_t<uint16_t> desc(m.latent);
        std::memcpy(desc.mutable_data(), ow->ws.descriptor, 2 * size_t(m.latent));
        return py::make_tuple(ow->ws.entropy_ref, ow->ws.decoder_ref, desc);
      },
      py::arg("model"), py::arg("library"), py::arg("tile"),
      "(entropy_ref, decoder_ref, descriptor) the rover selects for one tile (tests: compare with\n"
      "pymars.remac.selection).");

  m.attr("WAVELET_STATE_BITS") = kWvStateBits;
  m.attr("NL_K_CLASSES") = kNlKClasses;
  m.attr("NL_CONTEXTS") = kNlQContexts;
  m.attr("NL_BINS") = kNlQBins;
  m.attr("WAVELET_STEP_CLASSES") = kWvStepClasses;
  m.def(
      "wavelet_bin_counts",
      [](py::array_t<uint8_t, py::array::c_style | py::array::forcecast> tile, uint32_t step_q4) {
        uint32_t h, w, c;
        training_tile_shape(tile, &h, &w, &c);
        if (step_q4 == 0 || step_q4 > 65535) throw py::value_error("step_q4 must be in 1..65535");
        std::vector<int32_t> work(wv_work_ints(h, w, c));
        std::vector<uint8_t> out(wv_max_bytes(h, w, c));
        auto state = std::make_unique<WvState>();
        auto counts = std::make_unique<WvCounts>();
        std::memset(counts.get(), 0, sizeof(WvCounts));
        size_t n;
        {
          py::gil_scoped_release nogil;
          n = wv_encode(tile.data(), size_t(w) * c, h, w, c, step_q4, WvPriors{}, state.get(), work.data(), out.data(),
                        out.size(), counts.get());
        }
        py::array_t<uint32_t> result({size_t(2), size_t(kWvStateBits), size_t(2)});
        std::memcpy(result.mutable_data(), counts->n, sizeof(counts->n));
        return py::make_tuple(result, n);
      },
      py::arg("tile"), py::arg("step_q4"),
      "(counts uint32 [plane kind][context][bin], payload bytes) of one tile wavelet-coded at step_q4\n"
      "(1/16 level) with every context starting at 1/2: the statistics the WVPR priors are trained on.");

  m.def(
      "nl_bin_counts",
      [](py::array_t<uint8_t, py::array::c_style | py::array::forcecast> tile, uint32_t k) {
        uint32_t h, w, c;
        training_tile_shape(tile, &h, &w, &c);
        if (k > kNlMaxError) throw py::value_error("k must be in 0..32");
        std::vector<uint8_t> out(nl_max_bytes(h, w, c)), recon(size_t(h) * w * c);
        auto state = std::make_unique<NlState>();
        auto counts = std::make_unique<NlCounts>();
        std::memset(counts.get(), 0, sizeof(NlCounts));
        size_t n;
        {
          py::gil_scoped_release nogil;
          n = nl_encode(tile.data(), size_t(w) * c, h, w, c, k, NlCoder::Arith2, state.get(), out.data(), out.size(),
                        recon.data(), NlPriors{}, counts.get());
        }
        py::array_t<uint32_t> result({size_t(3), size_t(kNlQContexts), size_t(kNlQBins), size_t(2)});
        std::memcpy(result.mutable_data(), counts->n, sizeof(counts->n));
        return py::make_tuple(result, n);
      },
      py::arg("tile"), py::arg("k"),
      "(counts uint32 [channel][context][bin][0/1], payload bytes) of one tile coded by Arith2 at maximum error k\n"
      "with every probability starting at 1/2: the statistics the NLPR priors are trained on.");

  m.def(
      "encode",
      [](std::shared_ptr<PyModel> pm, py::array image, int quality, uint32_t tile_size, int bit_depth, int threads,
         py::object library_hash, py::object entropy_refs, py::object decoder_refs, py::object library,
         bool source_depth, py::object reference) {
        return ImageEncoder(std::move(pm), image, tile_size, bit_depth, threads, library_hash, entropy_refs,
                            decoder_refs, library, source_depth, reference).encode(quality);
      },
      py::arg("model"), py::arg("image"), py::arg("quality") = 75, py::arg("tile_size") = 256,
      py::arg("bit_depth") = 0, py::arg("threads") = 1, py::arg("library_hash") = py::none(),
      py::arg("entropy_refs") = py::none(), py::arg("decoder_refs") = py::none(), py::arg("library") = py::none(),
      py::arg("source_depth") = false, py::arg("reference") = py::none(),
      "Encode an (H, W[, C]) uint8/uint16 image into a complete pymars file. `source_depth`: a 12/16-bit\n"
      "image at a range-coded near-lossless quality keeps its bit depth (header flag bit 1). With `library` (a\n"
      "ReferenceLibraryCore) each tile's references are selected on the rover's rules, or taken\n"
      "from entropy_refs / decoder_refs when given. `reference`: (samples, id) of a frame already sent\n"
      "(sequence coding, docs/bitstream.md §4.10): tiles that overlap it may be coded predicted from it.");

  m.def(
      "sequence_registration",
      [](std::shared_ptr<PyModel> pm, py::array image, py::object reference, uint32_t tile_size) {
        return ImageEncoder(std::move(pm), image, tile_size, 0, 1, py::none(), py::none(), py::none(), py::none(),
                            false, reference).registration();
      },
      py::arg("model"), py::arg("image"), py::arg("reference"), py::arg("tile_size") = 256,
      "The rover's whole-frame alignment of `image` with a frame already sent: dict dy, dx (image(y, x) ~\n"
      "reference(y + dy, x + dx)), luma_offset and usable (whether tiles will try the predicted mode).");

  m.def(
      "encode_to_target",
      [](std::shared_ptr<PyModel> pm, py::array image, size_t target_bytes, uint32_t tile_size, int bit_depth,
         int threads, py::object library_hash, py::object entropy_refs, py::object decoder_refs, py::object library,
         py::object reference) {
        return ImageEncoder(std::move(pm), image, tile_size, bit_depth, threads, library_hash, entropy_refs,
                            decoder_refs, library, false, reference).encode_to_size(target_bytes);
      },
      py::arg("model"), py::arg("image"), py::arg("target_bytes"), py::arg("tile_size") = 256,
      py::arg("bit_depth") = 0, py::arg("threads") = 1, py::arg("library_hash") = py::none(),
      py::arg("entropy_refs") = py::none(), py::arg("decoder_refs") = py::none(), py::arg("library") = py::none(),
      py::arg("reference") = py::none(),
      "Encode at the highest quality whose file fits target_bytes; returns (bytes, quality). The\n"
      "search and the bytes are those of the C API's marsenc_encode_to_size.");

  py::class_<DecodeStream>(m, "DecodeStream",
                           "A pymars file opened for decoding tile range by tile range (pymars.api.decode_with_report).\n"
                           "The constructor checks the header against the model and refuses a file without a single\n"
                           "valid tile record (ValueError) before anything sized by the header is allocated; then the\n"
                           "records are scanned once. decode(first, count, threads) entropy-decodes one range of tiles,\n"
                           "so memory holds one range of latents, never the whole image's.")
      .def(py::init([](std::shared_ptr<PyModel> pm, py::bytes data, py::object library_hash, py::object library,
                       py::object reference) {
             return std::make_unique<DecodeStream>(std::move(pm), std::move(data), nullptr, library_hash, library,
                                                   reference);
           }),
           py::arg("model"), py::arg("data"), py::arg("library_hash") = py::none(), py::arg("library") = py::none(),
           py::arg("reference") = py::none())
      .def_property_readonly("header", &DecodeStream::header, "The file header as a dict (as pymars.info).")
      .def_property_readonly("summary", &DecodeStream::summary,
                             "What the record scan found: tiles_present, records_damaged, records_ignored,\n"
                             "bytes_skipped, trailing_bytes, file_bytes, min_complete_file_bytes.")
      .def("decode", &DecodeStream::decode, py::arg("first"), py::arg("count"), py::arg("threads") = 1,
           "Entropy-decode tiles first .. first+count-1: a list of tile dicts (index, y0, x0, height, width,\n"
           "status 'ok' / 'missing' / 'damaged', y_hat or pixels, tile_mean, entropy_ref, decoder_ref).");

  py::class_<ParsedFile>(m, "ParsedFile", "A file whose header is parsed (open_file): .header, then .decode_stream().")
      .def_property_readonly("header", [](const ParsedFile& f) { return header_as_dict(f.header); },
                             "The file header as a dict (as pymars.info / parse_file_header).")
      .def(
          "decode_stream",
          [](const ParsedFile& f, std::shared_ptr<PyModel> pm, py::object library_hash, py::object library,
             py::object reference) {
            return std::make_unique<DecodeStream>(std::move(pm), f.data, &f.header, library_hash, library, reference);
          },
          py::arg("model"), py::arg("library_hash") = py::none(), py::arg("library") = py::none(),
          py::arg("reference") = py::none(),
          "DecodeStream(model, data, library_hash, library) over this file, without parsing its header again.");
  m.def(
      "open_file",
      [](py::bytes data) {
        const auto* p = reinterpret_cast<const uint8_t*>(PYBIND11_BYTES_AS_STRING(data.ptr()));
        return ParsedFile{data, parse_header_or_throw(p, size_t(PYBIND11_BYTES_SIZE(data.ptr())))};
      },
      py::arg("data"),
        "Parse a file's header once: a ParsedFile with .header (dict) and .decode_stream(model, library=...).\n"
        "Raises ValueError naming the first problem of the header, as parse_file_header does.");

  m.def(
      "decode_latents",
      [](std::shared_ptr<PyModel> pm, py::bytes data, py::object library_hash, int threads, py::object library) {
        DecodeStream stream(pm, data, nullptr, library_hash, library);
        py::list tiles = stream.decode(0, stream.tile_count(), threads);
        py::dict out = stream.header();
        out["tiles"] = tiles;
        py::dict sum = stream.summary();
        for (auto item : sum) out[item.first] = item.second;
        return out;
      },
      py::arg("model"), py::arg("data"), py::arg("library_hash") = py::none(), py::arg("threads") = 1,
      py::arg("library") = py::none(),
      "Entropy-decode every tile: header fields, the scan summary (DecodeStream.summary) and a list of\n"
      "tiles with y_hat (M, hy, wy) or a status. Holds every tile's latents at once: tests and tools;\n"
      "decoding an image goes through DecodeStream.");

  m.def(
      "analyse_tile",
      [](std::shared_ptr<PyModel> pm, py::array tile, int quality, py::object library, py::object entropy_ref,
         py::object decoder_ref) {
        ImageArg a = image_arg(tile, 0);
        if (a.img.width > kMaxTileSize || a.img.height > kMaxTileSize) throw py::value_error("tile larger than 4096");
        const Model& m = pm->model;
        uint32_t side = std::max(a.img.width, a.img.height);
        side = (side + 15) / 16 * 16;
        auto ow = encoder_workspace(m, side);
        EncoderWorkspace& ws = ow->ws;
        TileDims d;
        TileInput t = tile_input(a.img, side, 0);
        ReferenceChoice rc;
        rc.library = library_of(library, pm);
        rc.forced = !entropy_ref.is_none() || !decoder_ref.is_none();
        rc.entropy_ref = entropy_ref.is_none() ? kNoReference : entropy_ref.cast<uint16_t>();
        rc.decoder_ref = decoder_ref.is_none() ? kNoReference : decoder_ref.cast<uint16_t>();
        analyse_tile(m, t, ws, &d, rc);
        const uint8_t* p;
        size_t len;
        if (!code_tile(m, ws, d, uint32_t(quality), &p, &len)) throw std::runtime_error("tile stream overflow");
        py::dict r;
        r["y"] = array3<float>(ws.y, m.latent, d.hy, d.wy);
        r["z_hat"] = array3<int32_t>(ws.z_hat, m.hyper, d.hz, d.wz);
        r["mean_q4"] = array3<int32_t>(ws.mean_q4, m.latent, d.hy, d.wy);
        r["raw_index"] = array3<int32_t>(ws.raw_index, m.latent, d.hy, d.wy);
        r["symbols"] = array3<int32_t>(ws.symbols, m.latent, d.hy, d.wy);
        r["index"] = array3<int32_t>(ws.index, m.latent, d.hy, d.wy);
        r["payload"] = py::bytes(reinterpret_cast<const char*>(p), len);
        r["entropy_ref"] = ws.entropy_ref;
        r["decoder_ref"] = ws.decoder_ref;
        return r;
      },
      py::arg("model"), py::arg("tile"), py::arg("quality") = 75, py::arg("library") = py::none(),
      py::arg("entropy_ref") = py::none(), py::arg("decoder_ref") = py::none(),
      "Encoder internals of one tile (tests and debugging): y, z_hat, entropy parameters, symbols, payload.");

  m.def(
      "decode_tile_payload",
      [](std::shared_ptr<PyModel> pm, py::bytes payload, uint32_t height, uint32_t width, int quality,
         py::object library, py::object entropy_ref) {
        std::string p = payload;
        const Model& m = pm->model;
        const RefLibrary* lib = library_of(library, pm);
        const int8_t* ref = entropy_ref.is_none() ? nullptr : reference_latent(lib, entropy_ref.cast<uint16_t>());
        if (!entropy_ref.is_none() && !ref) throw py::value_error("entropy_ref is not in the library");
        if (height == 0 || width == 0 || height > kMaxTileSize || width > kMaxTileSize) throw py::value_error("bad tile size");
        if (quality < 0 || !valid_quality(uint32_t(quality)))
          throw py::value_error(encode_status_message(EncodeStatus::BadQuality));
        uint32_t side = (std::max(height, width) + 15) / 16 * 16;
        auto ow = decoder_workspace(m, side);
        DecoderWorkspace& ws = ow->ws;
        TileDims d = tile_dims(height, width);
        std::vector<float> y(size_t(m.latent) * d.hy * d.wy);
        if (!decode_tile(m, ws, d, uint32_t(quality), reinterpret_cast<const uint8_t*>(p.data()), p.size(), y.data(), ref))
          throw py::value_error("damaged tile payload");
        py::dict r;
        r["z_hat"] = array3<int32_t>(ws.z_hat, m.hyper, d.hz, d.wz);
        r["mean_q4"] = array3<int32_t>(ws.mean_q4, m.latent, d.hy, d.wy);
        r["raw_index"] = array3<int32_t>(ws.raw_index, m.latent, d.hy, d.wy);
        r["index"] = array3<int32_t>(ws.index, m.latent, d.hy, d.wy);
        r["symbols"] = array3<int32_t>(ws.symbols, m.latent, d.hy, d.wy);
        r["y_hat"] = array3<float>(y.data(), m.latent, d.hy, d.wy);
        return r;
      },
      py::arg("model"), py::arg("payload"), py::arg("height"), py::arg("width"), py::arg("quality"),
      py::arg("library") = py::none(), py::arg("entropy_ref") = py::none(),
      "Decode one tile payload and return every decoded quantity (tests and debugging).");

  m.def(
      "entropy_parameters",
      [](std::shared_ptr<PyModel> pm, py::array_t<int32_t, py::array::c_style | py::array::forcecast> z_hat,
         uint32_t hy, uint32_t wy, py::object ref_latent) {
        const Model& m = pm->model;
        if (z_hat.ndim() != 3 || uint32_t(z_hat.shape(0)) != m.hyper) throw py::value_error("z_hat must be (Mz, hz, wz)");
        TileDims d;
        d.hy = hy;
        d.wy = wy;
        d.hz = uint32_t(z_hat.shape(1));
        d.wz = uint32_t(z_hat.shape(2));
        if (d.hz == 0 || d.wz == 0 || hy > 4 * d.hz || wy > 4 * d.wz || d.hz > 1024 || d.wz > 1024)
          throw py::value_error("latent size must be at most 4x the hyper-latent size");
        for (ssize_t i = 0; i < z_hat.size(); ++i)
          if (std::abs(z_hat.data()[i]) > int32_t(m.z_limit)) throw py::value_error("z_hat outside the z limit");
        py::array_t<int8_t, py::array::c_style | py::array::forcecast> ref;
        if (!ref_latent.is_none()) {
          if (!m.has_ref) throw py::value_error("the model has no reference branch");
          ref = py::array_t<int8_t, py::array::c_style | py::array::forcecast>::ensure(ref_latent);
          if (!ref || ref.ndim() != 3 || uint32_t(ref.shape(0)) != m.latent || ref.shape(1) != kRefLatentSide ||
              ref.shape(2) != kRefLatentSide)
            throw py::value_error("ref_latent must be int8 (M, 16, 16)");
        }
        size_t peak, d2s, ref_in;
        hs_scratch_sizes(m, d.hz, d.wz, &peak, &d2s, &ref_in);
        std::vector<int32_t> ia(peak), ib(peak), sc(d2s), ri(ref_in), mean(size_t(m.latent) * hy * wy), idx(mean.size());
        entropy_parameters(m, z_hat.data(), d, ia.data(), ib.data(), sc.data(), mean.data(), idx.data(),
                           ref_latent.is_none() ? nullptr : ref.data(), ri.data());
        return py::make_tuple(array3<int32_t>(mean.data(), m.latent, hy, wy), array3<int32_t>(idx.data(), m.latent, hy, wy));
      },
      py::arg("model"), py::arg("z_hat"), py::arg("hy"), py::arg("wy"), py::arg("ref_latent") = py::none(),
      "The integer hyper-synthesis: (mean_q4, raw_index), each (M, hy, wy) int32 (ref_latent: the\n"
      "entropy reference's int8 latent (M, 16, 16) for REMAC models; None: no reference).");
}
