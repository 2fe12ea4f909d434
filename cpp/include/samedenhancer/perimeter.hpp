// perimeter.hpp: perimeter of a connected component as the length of its traced outer border,
// and the isoperimetric quotient built on it.
//
// Definition: the perimeter is the length of the closed polygon through the centres of the outer
// 8-connected border pixels, in the order Suzuki & Abe's border following visits them (Suzuki &
// Abe 1985, "Topological structural analysis of digitized binary images by border following",
// CVGIP 30(1):32-46, doi:10.1016/0734-189X(85)90016-7, step 3 for an outer border): axial steps
// count 1 and diagonal steps sqrt(2). That is exactly what OpenCV's findContours(RETR_EXTERNAL,
// CHAIN_APPROX_NONE) followed by arcLength(closed=true) measures, so research code and this core
// agree. A one-pixel component has perimeter 0; a one-pixel-wide line is walked out and back.
// Changed from Suzuki & Abe: only the outer border of one component is followed, starting at its
// first pixel in raster order (whose left neighbour is never in the component); the component is
// given as a predicate, so no per-component mask is built and nothing is written.
// The isoperimetric quotient is IPQ = 4*pi*A / P^2, clamped to <= 1 (digital shapes can exceed
// it, and P = 0 gives 1).
// Complexity: O(border length) per component.
#pragma once

#include <cmath>
#include <cstdint>

namespace samedenhancer {

// Length of the outer border of the component containing (y0, x0), its first pixel in raster
// order. `inside(y, x)` says whether a pixel of the H x W image belongs to the component.
template <typename Inside>
double outer_perimeter(int64_t y0, int64_t x0, int64_t height, int64_t width, const Inside& inside) {
    // Chain codes counter-clockwise on screen (y down): E, NE, N, NW, W, SW, S, SE.
    static constexpr int dy[8] = {0, -1, -1, -1, 0, 1, 1, 1};
    static constexpr int dx[8] = {1, 1, 0, -1, -1, -1, 0, 1};
    auto in = [&](int64_t y, int64_t x, int d) {
        const int64_t yy = y + dy[d], xx = x + dx[d];
        return yy >= 0 && yy < height && xx >= 0 && xx < width && inside(yy, xx);
    };
    // Step 3.1: from the west neighbour (background), search clockwise for the first pixel.
    int d1 = -1;
    for (int k = 0; k < 8; ++k) {
        const int d = (4 - k + 8) % 8;
        if (in(y0, x0, d)) { d1 = d; break; }
    }
    if (d1 < 0) return 0.0;  // isolated pixel
    const int64_t y1 = y0 + dy[d1], x1 = x0 + dx[d1];
    int64_t axial = 0, diagonal = 0;
    int64_t y = y0, x = x0;
    int back = d1;  // direction from the current pixel to the previous one
    for (;;) {
        // Step 3.3: counter-clockwise from the element after the previous pixel.
        int dn = back;
        for (int k = 1; k <= 8; ++k) {
            const int d = (back + k) % 8;
            if (in(y, x, d)) { dn = d; break; }
        }
        if (dn % 2 == 0) ++axial; else ++diagonal;
        const int64_t ny = y + dy[dn], nx = x + dx[dn];
        // Step 3.5: back at the start, coming from the last pixel of the border.
        if (ny == y0 && nx == x0 && y == y1 && x == x1) break;
        y = ny;
        x = nx;
        back = (dn + 4) % 8;
    }
    return static_cast<double>(axial) + std::sqrt(2.0) * static_cast<double>(diagonal);
}

// Isoperimetric quotient 4*pi*area / perimeter^2, clamped to <= 1.
inline double isoperimetric_quotient(double area, double perimeter) {
    if (perimeter <= 0.0) return 1.0;
    constexpr double pi = 3.14159265358979323846;
    const double q = 4.0 * pi * area / (perimeter * perimeter);
    return q > 1.0 ? 1.0 : q;
}

}  // namespace samedenhancer
