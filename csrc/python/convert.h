// convert.h - C++ -> Python conversions shared by the binding files.
#pragma once
#include <pybind11/pybind11.h>

#include "core/container.h"

namespace pymars {

// The file header as the dict that pymars.info() returns.
pybind11::dict header_as_dict(const FileHeader& h);

}  // namespace pymars
