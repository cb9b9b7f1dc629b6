// bind_entropy.cpp - Python access to the bitstream building blocks: CRC-32,
// SHA-256, the rANS value coder (rans.h) and the container (container.h).
//
// What it is for: letting Python tests check the C++ coder against
// independent oracles (zlib, hashlib, constriction) and letting tools inspect
// files. It only wraps; every rule lives in the C++ core, so nothing here may
// change what the coder or the container accepts. Errors become ValueError
// with the core's own message; damaged input never crashes.
#include "convert.h"
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/container.h"
#include "core/crc32.h"
#include "core/rans.h"
#include "core/sha256.h"

namespace py = pybind11;

namespace pymars {

py::dict header_as_dict(const FileHeader& h) {
  py::dict d;
  d["version"] = h.version;
  d["header_length"] = h.header_length;
  d["flags"] = h.flags;
  d["model_id"] = py::bytes(reinterpret_cast<const char*>(h.model_id), 8);
  d["width"] = h.width;
  d["height"] = h.height;
  d["channels"] = h.channels;
  d["bit_depth"] = h.bit_depth;
  d["quality"] = h.quality;
  d["tile_size"] = h.tile_size;
  d["tile_count"] = h.tile_count;
  // Bits per coded near-lossless sample: the bit depth with flags bit 1 (docs/bitstream.md §4.8), else 8.
  d["sample_depth"] = (h.flags & kFlagSourceDepth) ? h.bit_depth : 8;
  d["library_hash"] = (h.flags & kFlagLibraryHash)
                          ? py::object(py::bytes(reinterpret_cast<const char*>(h.library_hash), 8))
                          : py::object(py::none());
  // Sequence coding (§4.10): the id of the earlier frame's file this file was coded against.
  d["sequence_id"] = (h.flags & kFlagSequenceRef)
                         ? py::object(py::bytes(reinterpret_cast<const char*>(h.sequence_id), 8))
                         : py::object(py::none());
  return d;
}

FileHeader parse_header_or_throw(const uint8_t* data, size_t len) {
  FileHeader h;
  const ParseStatus status = parse_file_header(data, len, &h);
  if (status == ParseStatus::kOk) return h;
  std::string message = parse_status_message(status);
  if (status == ParseStatus::kFieldOutOfRange && len >= kFileHeaderBytes) {
    // Re-read the raw fields only to name the culprit for the user.
    FileHeader raw;
    const uint8_t* p = data;
    raw.width = uint32_t(p[16]) | uint32_t(p[17]) << 8 | uint32_t(p[18]) << 16 | uint32_t(p[19]) << 24;
    raw.height = uint32_t(p[20]) | uint32_t(p[21]) << 8 | uint32_t(p[22]) << 16 | uint32_t(p[23]) << 24;
    raw.channels = p[24];
    raw.bit_depth = p[25];
    raw.quality = p[26];
    raw.tile_size = uint16_t(p[28] | p[29] << 8);
    const char* field = file_header_field_out_of_range(raw);
    message += std::string(": ") + (field ? field : "reserved");
  }
  throw py::value_error(message);
}

namespace {

// Tables copied out of Python so that the coder can run without the GIL.
struct TableSet {
  std::vector<std::vector<uint32_t>> storage;
  std::vector<CdfTable> tables;
};

TableSet tables_from_python(const py::sequence& seq) {
  TableSet set;
  set.storage.reserve(py::len(seq));
  for (size_t t = 0; t < py::len(seq); ++t) {
    py::tuple entry = seq[t].cast<py::tuple>();
    if (entry.size() != 2) throw py::value_error("table " + std::to_string(t) + ": expected (half_width, cdf)");
    const int64_t half_width = entry[0].cast<int64_t>();
    auto cdf = entry[1].cast<py::array_t<uint32_t, py::array::c_style | py::array::forcecast>>();
    if (half_width < 1 || half_width > int64_t(kRansTotal / 2) || cdf.ndim() != 1 ||
        cdf.shape(0) != 2 * half_width + 3)
      throw py::value_error("table " + std::to_string(t) + ": cdf must have 2*half_width+3 entries");
    set.storage.emplace_back(cdf.data(), cdf.data() + cdf.shape(0));
  }
  for (size_t t = 0; t < set.storage.size(); ++t) {
    const int64_t half_width = (int64_t(set.storage[t].size()) - 3) / 2;
    const CdfTable table{uint32_t(half_width), set.storage[t].data()};
    if (!cdf_table_valid(table))
      throw py::value_error("table " + std::to_string(t) +
                            ": cdf must start at 0, end at 65536 and increase strictly");
    set.tables.push_back(table);
  }
  return set;
}

// A 1-D integer array as int64 (never a silent float truncation).
std::vector<int64_t> integers_from_python(const py::array& a, const char* name) {
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u') throw py::type_error(std::string(name) + " must be an integer array");
  auto as64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!as64 || as64.ndim() != 1) throw py::value_error(std::string(name) + " must be one-dimensional");
  return std::vector<int64_t>(as64.data(), as64.data() + as64.shape(0));
}

std::vector<uint32_t> table_indices(const py::array& a, size_t n_tables) {
  const std::vector<int64_t> raw = integers_from_python(a, "table_index");
  std::vector<uint32_t> out(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] < 0 || uint64_t(raw[i]) >= n_tables)
      throw py::value_error("table_index[" + std::to_string(i) + "] = " + std::to_string(raw[i]) +
                            " is not a table");
    out[i] = uint32_t(raw[i]);
  }
  return out;
}

const uint8_t* byte_ptr(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

py::bytes rans_encode_values(const py::array& values, const py::array& table_index, const py::sequence& tables) {
  const TableSet set = tables_from_python(tables);
  const std::vector<int64_t> v = integers_from_python(values, "values");
  const std::vector<uint32_t> idx = table_indices(table_index, set.tables.size());
  if (v.size() != idx.size()) throw py::value_error("values and table_index differ in length");
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] < -kRansMaxAbsValue || v[i] > kRansMaxAbsValue)
      throw py::value_error("values[" + std::to_string(i) + "] = " + std::to_string(v[i]) +
                            " is outside +-2^20 (docs/bitstream.md 4.3)");
  std::vector<uint8_t> buf(rans_max_stream_bytes(v.size()));
  const uint8_t* out = nullptr;
  size_t out_len = 0;
  bool ok = false;
  {
    py::gil_scoped_release nogil;
    RansEncoder enc(buf.data(), buf.data() + buf.size());
    for (size_t i = v.size(); i-- > 0;) enc.put_value(set.tables[idx[i]], int32_t(v[i]));  // LIFO
    ok = enc.finish(&out, &out_len);
  }
  if (!ok) throw py::value_error("rANS encoder failed (buffer overflow or invalid symbol)");
  return py::bytes(reinterpret_cast<const char*>(out), out_len);
}

py::array_t<int32_t> rans_decode_values(const py::bytes& data, const py::array& table_index,
                                        const py::sequence& tables) {
  const TableSet set = tables_from_python(tables);
  const std::vector<uint32_t> idx = table_indices(table_index, set.tables.size());
  const std::string d = data;
  py::array_t<int32_t> result(py::ssize_t(idx.size()));
  int32_t* v = result.mutable_data();
  size_t failed_at = idx.size();
  bool clean_end = false;
  {
    py::gil_scoped_release nogil;
    RansDecoder dec(byte_ptr(d), d.size());
    for (size_t i = 0; i < idx.size(); ++i) {
      if (!dec.get_value(set.tables[idx[i]], &v[i]) && failed_at == idx.size()) failed_at = i;
    }
    clean_end = dec.finish_ok();
  }
  if (failed_at != idx.size())
    throw py::value_error("damaged rANS stream: decoding failed at value " + std::to_string(failed_at));
  if (!clean_end)
    throw py::value_error("damaged rANS stream: final state or length check failed (docs/bitstream.md 4.1)");
  return result;
}

py::dict parse_header(const py::bytes& data) {
  const std::string d = data;
  return header_as_dict(parse_header_or_throw(byte_ptr(d), d.size()));
}

template <size_t N>
void copy_id(const py::object& value, uint8_t (&out)[N], const char* name) {
  if (value.is_none()) return;
  const std::string s = value.cast<py::bytes>();
  if (s.size() != N) throw py::value_error(std::string(name) + " must be " + std::to_string(N) + " bytes");
  for (size_t i = 0; i < N; ++i) out[i] = uint8_t(s[i]);
}

py::bytes write_header(uint32_t width, uint32_t height, uint8_t channels, uint8_t bit_depth, uint8_t quality,
                       uint16_t tile_size, const py::object& model_id, const py::object& library_hash) {
  FileHeader h;
  copy_id(model_id, h.model_id, "model_id");
  if (!library_hash.is_none()) {
    h.flags = kFlagLibraryHash;
    copy_id(library_hash, h.library_hash, "library_hash");
  }
  h.header_length = file_header_length_for(h.flags);
  h.width = width;
  h.height = height;
  h.channels = channels;
  h.bit_depth = bit_depth;
  h.quality = quality;
  h.tile_size = tile_size;
  h.tile_count = expected_tile_count(width, height, tile_size);
  uint8_t out[kFileHeaderMaxBytes];
  const size_t n = write_file_header(h, out, sizeof out);
  if (n == 0) {
    const char* field = file_header_field_out_of_range(h);
    throw py::value_error(std::string("header field out of range: ") + (field ? field : "?"));
  }
  return py::bytes(reinterpret_cast<const char*>(out), n);
}

py::bytes make_record(uint32_t tile_index, const py::bytes& payload, uint16_t entropy_ref, uint16_t decoder_ref) {
  const std::string p = payload;
  const TileRecordHeader h =
      make_tile_record_header(tile_index, entropy_ref, decoder_ref, byte_ptr(p), uint32_t(p.size()));
  uint8_t head[kTileRecordHeaderBytes];
  write_tile_record_header(h, head, sizeof head);
  return py::bytes(std::string(reinterpret_cast<const char*>(head), sizeof head) + p);
}

py::list scan_records(const py::bytes& data, size_t header_length, uint32_t tile_count, bool with_refs) {
  const std::string d = data;
  if (header_length > d.size()) throw py::value_error("header_length exceeds the data");
  std::vector<TileSpan> spans(tile_count);
  std::vector<uint32_t> checkpoints(crc_checkpoint_count(d.size() - header_length));
  {
    py::gil_scoped_release nogil;
    const uint8_t* records = byte_ptr(d) + header_length;
    make_crc_checkpoints(records, d.size() - header_length, checkpoints.data());
    scan_tile_records(records, d.size() - header_length, tile_count, spans.data(), checkpoints.data());
  }
  py::list out;
  for (const TileSpan& s : spans) {
    if (s.state != TileState::kPresent) {
      out.append(py::none());
    } else if (with_refs) {
      out.append(py::make_tuple(header_length + s.payload_offset, s.payload_length, s.entropy_ref, s.decoder_ref));
    } else {
      out.append(py::make_tuple(header_length + s.payload_offset, s.payload_length));
    }
  }
  return out;
}

}  // namespace
}  // namespace pymars

// Global, as declared by bindings.cpp, which calls it while building the
// module pymars._core.
void bind_entropy(py::module_& m) {
  using namespace pymars;
  m.def(
      "crc32",
      [](const py::bytes& data, uint32_t previous) {
        const std::string d = data;
        return crc32(byte_ptr(d), d.size(), previous);
      },
      py::arg("data"), py::arg("previous") = 0,
      "CRC-32 of the bitstream (IEEE, same value as zlib.crc32).\n\n"
      ">>> from pymars import _core\n>>> hex(_core.crc32(b'123456789'))\n'0xcbf43926'");
  m.def(
      "sha256",
      [](const py::bytes& data) {
        const std::string d = data;
        uint8_t digest[kSha256DigestBytes];
        sha256(byte_ptr(d), d.size(), digest);
        return py::bytes(reinterpret_cast<const char*>(digest), sizeof digest);
      },
      py::arg("data"),
      "SHA-256 digest (FIPS 180-4), as used for model_id and library_hash.\n\n"
      ">>> from pymars import _core\n>>> _core.sha256(b'abc').hex()[:16]\n'ba7816bf8f01cfea'");
  m.def("rans_encode_values", &rans_encode_values, py::arg("values"), py::arg("table_index"), py::arg("tables"),
        "Code signed values (|v| <= 2^20) with integer CDF tables into one rANS stream\n"
        "(docs/bitstream.md 4.1-4.3). values[i] uses tables[table_index[i]]; each table is\n"
        "(half_width, cdf) with cdf of 2*half_width+3 uint32 counts from 0 to 65536.\n"
        "Values are given in decoding order.\n\n"
        ">>> import numpy as np\n>>> from pymars import _core\n"
        ">>> t = [(1, np.array([0, 100, 65400, 65500, 65536], np.uint32))]\n"
        ">>> s = _core.rans_encode_values(np.array([0, 5, -1], np.int32), np.zeros(3, np.int32), t)\n"
        ">>> _core.rans_decode_values(s, np.zeros(3, np.int32), t).tolist()\n[0, 5, -1]");
  m.def("rans_decode_values", &rans_decode_values, py::arg("data"), py::arg("table_index"), py::arg("tables"),
        "Decode len(table_index) values; raises ValueError when the stream is damaged\n"
        "(any §4 check fails, including the final state and length check).");
  m.def("parse_file_header", &parse_header, py::arg("data"),
        "Parse and check a file header (docs/bitstream.md 1); returns a dict of its fields,\n"
        "raises ValueError naming the first problem.");
  m.def("write_file_header", &write_header, py::arg("width"), py::arg("height"), py::arg("channels") = 3,
        py::arg("bit_depth") = 8, py::arg("quality") = 75, py::arg("tile_size") = 256,
        py::arg("model_id") = py::none(), py::arg("library_hash") = py::none(),
        "Build a file header (tile_count is derived); library_hash (8 bytes) sets flags bit 0.");
  m.def("make_tile_record", &make_record, py::arg("tile_index"), py::arg("payload"),
        py::arg("entropy_ref") = kNoReference, py::arg("decoder_ref") = kNoReference,
        "One tile record (docs/bitstream.md 3): the 24-byte record header followed by the payload.");
  m.def(
      "has_valid_tile_record",
      [](const py::bytes& data, size_t header_length, uint32_t tile_count) {
        const char* d = PYBIND11_BYTES_AS_STRING(data.ptr());
        const size_t n = size_t(PYBIND11_BYTES_SIZE(data.ptr()));
        if (header_length > n) return false;
        const uint8_t* records = reinterpret_cast<const uint8_t*>(d) + header_length;
        std::vector<uint32_t> checkpoints(crc_checkpoint_count(n - header_length));
        py::gil_scoped_release nogil;
        make_crc_checkpoints(records, n - header_length, checkpoints.data());
        return has_valid_tile_record(records, n - header_length, tile_count, checkpoints.data());
      },
      py::arg("data"), py::arg("header_length"), py::arg("tile_count"),
      "True when the file (data includes the header) holds at least one tile record the scanner would\n"
      "accept; allocates nothing (docs/bitstream.md 3, Decoder limits).\n\n"
      ">>> from pymars import _core\n>>> _core.has_valid_tile_record(_core.write_file_header(16, 16), 40, 1)\nFalse");
  m.def("scan_tile_records", &scan_records, py::arg("data"), py::arg("header_length"), py::arg("tile_count"),
        py::arg("with_refs") = false,
        "Locate the tile payloads of a whole file (data includes the header). Returns one entry\n"
        "per tile: (offset, length) into data, or None when the tile is missing or damaged;\n"
        "with_refs=True gives (offset, length, entropy_ref, decoder_ref).");
}
