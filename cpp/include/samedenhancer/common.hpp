// common.hpp: small types shared by the samedenhancer core headers.
//
// Boxes are XYXY with inclusive pixel coordinates (x0, y0, x1, y1), as the Python API reports them.
// Images are row-major (C order) H x W buffers addressed with int64_t sizes and offsets; the
// caller owns every buffer. Nothing here allocates per pixel and nothing holds mutable state.
#pragma once

#include <algorithm>
#include <cstdint>
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

// Throws std::invalid_argument("<what>: expected <expected>, got <got>").
[[noreturn]] inline void fail(const std::string& what, const std::string& expected, const std::string& got) {
    throw std::invalid_argument(what + ": expected " + expected + ", got " + got);
}

}  // namespace samedenhancer
