// Helpers shared by the bind_*.cpp files: array checks and dtype dispatch. Bindings only.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "samedenhancer/common.hpp"
#include "samedenhancer/edt.hpp"

namespace samedenhancer::bindings {

namespace py = pybind11;

// The label map dtypes dispatch accepts without allow_float.
inline constexpr const char* kLabelTypes = "dtype bool, uint8, uint16, int32 or int64";

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// Checks that `a` is a C-contiguous array in native byte order with at least one axis.
inline void check_array(const py::array& a, const char* name) {
    if (a.ndim() < 1) fail(name, "an array with at least one axis", "a 0-D array");
    if (!(a.flags() & py::array::c_style)) fail(name, "a C-contiguous array", "a non-contiguous array");
    if (a.dtype().byteorder() == '>')
        fail(name, "a native byte order array", "dtype " + std::string(py::str(a.dtype())));
}

// The axis sizes of `a`.
inline std::vector<int64_t> shape_of(const py::array& a) {
    std::vector<int64_t> shape(static_cast<size_t>(a.ndim()));
    for (py::ssize_t i = 0; i < a.ndim(); ++i) shape[static_cast<size_t>(i)] = a.shape(i);
    return shape;
}

// Checks that `a` is a 2-D C-contiguous array in native byte order whose pixels can be numbered
// in int32 (component labels, region ids and coordinates are int32).
inline void check_image(const py::array& a, const char* name) {
    if (a.ndim() != 2) fail(name, "a 2-D array", std::to_string(a.ndim()) + "-D array of shape " + shape_str(a));
    check_array(a, name);
    constexpr int64_t limit = std::numeric_limits<int32_t>::max();
    if (a.shape(0) > limit || a.shape(1) > limit || a.shape(0) * a.shape(1) > limit)
        fail(name, "at most " + std::to_string(limit) + " pixels (labels and coordinates are int32)",
             "an array of shape " + shape_str(a));
}

// `spacing` checked against `a`: one value per axis (empty means 1 on every axis) in the range the
// distance transform supports (check_edt_spacing).
inline std::vector<double> check_spacing(std::vector<double> spacing, const py::array& a) {
    const auto ndim = static_cast<size_t>(a.ndim());
    if (spacing.empty()) spacing.assign(ndim, 1.0);
    if (spacing.size() != ndim)
        fail("spacing", std::to_string(ndim) + " values (one per axis of " + shape_str(a) + ")",
             std::to_string(spacing.size()) + " values " +
                 format_values(spacing.data(), static_cast<int64_t>(spacing.size())));
    const std::vector<int64_t> shape = shape_of(a);
    check_edt_spacing(static_cast<int>(a.ndim()), shape.data(), spacing.data());
    return spacing;
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
