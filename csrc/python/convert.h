// convert.h - C++ -> Python conversions shared by the binding files.
#pragma once
#include <pybind11/pybind11.h>

#include "core/container.h"

namespace pymars {

// The file header as the dict that pymars.info() returns.
pybind11::dict header_as_dict(const FileHeader& h);

// parse_file_header(), or ValueError naming the first problem (the field, for
// a field out of range): the message of pymars._core.parse_file_header.
FileHeader parse_header_or_throw(const uint8_t* data, size_t len);

}  // namespace pymars
