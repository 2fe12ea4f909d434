// Helpers shared by the bind_*.cpp files: array checks and dtype dispatch. Bindings only.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "samedenhancer/common.hpp"

namespace samedenhancer::bindings {

namespace py = pybind11;

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// Checks that `a` is a 2-D C-contiguous array in native byte order.
inline void check_image(const py::array& a, const char* name) {
    if (a.ndim() != 2) fail(name, "a 2-D array", std::to_string(a.ndim()) + "-D array of shape " + shape_str(a));
    if (!(a.flags() & py::array::c_style)) fail(name, "a C-contiguous array", "a non-contiguous array");
    if (a.dtype().byteorder() == '>')
        fail(name, "a native byte order array", "dtype " + std::string(py::str(a.dtype())));
}

// Calls fn(static_cast<const T*>(data)) with T the element type of `a` (bool as uint8).
template <typename Fn>
void dispatch(const py::array& a, const char* name, const char* allowed, Fn&& fn, bool allow_float = false) {
    const char kind = a.dtype().kind();
    const auto size = a.itemsize();
    const void* p = a.data();
    if ((kind == 'u' || kind == 'b') && size == 1) return fn(static_cast<const uint8_t*>(p));
    if (kind == 'u' && size == 2) return fn(static_cast<const uint16_t*>(p));
    if (kind == 'i' && size == 4) return fn(static_cast<const int32_t*>(p));
    if (kind == 'i' && size == 8) return fn(static_cast<const int64_t*>(p));
    if (allow_float && kind == 'f' && size == 4) return fn(static_cast<const float*>(p));
    if (allow_float && kind == 'f' && size == 8) return fn(static_cast<const double*>(p));
    fail(name, allowed, "dtype " + std::string(py::str(a.dtype())));
}

}  // namespace samedenhancer::bindings
