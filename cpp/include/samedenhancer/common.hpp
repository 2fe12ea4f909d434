// common.hpp: small types shared by the samedenhancer core headers.
//
// Boxes are XYXY with inclusive pixel coordinates (x0, y0, x1, y1), as the Python API reports them.
// Images are row-major (C order) H x W buffers addressed with int64_t sizes and offsets; the
// caller owns every buffer. Nothing here allocates per pixel and nothing holds mutable state.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace samedenhancer {

// An axis-aligned box, inclusive pixel coordinates.
struct Box {
    int64_t x0 = 0;
    int64_t y0 = 0;
    int64_t x1 = -1;
    int64_t y1 = -1;

    int64_t width() const { return x1 - x0 + 1; }
    int64_t height() const { return y1 - y0 + 1; }
    // Number of pixels the box covers (0 for an empty box).
    int64_t area() const { return (x1 < x0 || y1 < y0) ? 0 : width() * height(); }
    // The smallest box holding both.
    Box united(const Box& o) const {
        return Box{std::min(x0, o.x0), std::min(y0, o.y0), std::max(x1, o.x1), std::max(y1, o.y1)};
    }
    // Grown by `r` on every side, clipped to an image of `height` x `width`.
    Box grown(int64_t r, int64_t height, int64_t width) const {
        return Box{std::max<int64_t>(0, x0 - r), std::max<int64_t>(0, y0 - r),
                   std::min<int64_t>(width - 1, x1 + r), std::min<int64_t>(height - 1, y1 + r)};
    }
};

// `value` in %g form (six significant digits: 1e+154, 0.5, nan).
inline std::string format_number(double value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", value);
    return buf;
}

// `values` as "(a, b, c)", each number in %g form.
inline std::string format_values(const double* values, int64_t n) {
    std::string out = "(";
    for (int64_t i = 0; i < n; ++i) out += (i ? ", " : "") + format_number(values[i]);
    return out + (n == 1 ? ",)" : ")");
}

// `values` as "(a, b, c)".
inline std::string format_values(const int64_t* values, int64_t n) {
    std::string out = "(";
    for (int64_t i = 0; i < n; ++i) out += (i ? ", " : "") + std::to_string(values[i]);
    return out + (n == 1 ? ",)" : ")");
}

// Throws std::invalid_argument("<what>: expected <expected>, got <got>").
[[noreturn]] inline void fail(const std::string& what, const std::string& expected, const std::string& got) {
    throw std::invalid_argument(what + ": expected " + expected + ", got " + got);
}

}  // namespace samedenhancer
