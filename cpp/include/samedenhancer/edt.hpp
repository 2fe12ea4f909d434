// edt.hpp: exact Euclidean distance transform of a 2-D image (distance of every nonzero pixel to
// the nearest zero pixel), with optional pixel spacing.
//
// Algorithm: the separable exact transform of Felzenszwalb & Huttenlocher 2012, "Distance
// Transforms of Sampled Functions", Theory of Computing 8:415-428, doi:10.4086/toc.2012.v008a019.
// Pass one runs down the columns: the 1-D distance to the nearest zero in the column, by a forward
// and a backward sweep (the binary first phase of Meijster, Roerdink & Hesselink 2000,
// doi:10.1007/0-306-47025-X_36). Pass two runs along each row: the lower envelope of the parabolas
// f(q) + sx^2 (x - q)^2 rooted at the squared column distances, evaluated at every pixel.
// Changed from the paper: the column pass is done row by row over whole rows (contiguous,
// vectorisable) instead of column by column; parabolas with an infinite root (columns without any
// zero) are left out of the envelope instead of relying on inf - inf; envelope arithmetic is in
// double so ties between parabolas are resolved exactly for any image size; a row without
// foreground is copied as zeros. As in SciPy's distance_transform_edt, pixels outside the image are
// not zeros; an image without any zero pixel gives +inf everywhere (SciPy's result there is an
// artefact). Needs IEEE infinities: never compile with -ffast-math.
// Complexity: O(H*W) time, O(W) scratch reused across rows (and across calls via EdtScratch).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace samedenhancer {

// Scratch buffers of the row pass, reusable between calls.
struct EdtScratch {
    std::vector<double> f, z;
    std::vector<int64_t> v;
};

// Writes into `out` (H x W, row-major) the squared distance (Sqrt = false) or the distance
// (Sqrt = true) of every nonzero pixel of `in` to the nearest zero pixel; zero pixels get 0.
// Spacing: sy between rows, sx between columns.
template <bool Sqrt, typename T, typename Out>
void euclidean_distance_transform(const T* in, int64_t height, int64_t width, Out* out, EdtScratch& scratch,
                                  double sy = 1.0, double sx = 1.0) {
    constexpr Out inf = std::numeric_limits<Out>::infinity();
    if (height <= 0 || width <= 0) return;
    // Column pass (in units of rows): forward then backward sweep, whole rows at a time.
    for (int64_t x = 0; x < width; ++x) out[x] = in[x] != T(0) ? inf : Out(0);
    for (int64_t y = 1; y < height; ++y) {
        const T* row = in + y * width;
        const Out* up = out + (y - 1) * width;
        Out* cur = out + y * width;
        for (int64_t x = 0; x < width; ++x) cur[x] = row[x] != T(0) ? up[x] + Out(1) : Out(0);
    }
    for (int64_t y = height - 2; y >= 0; --y) {
        const Out* down = out + (y + 1) * width;
        Out* cur = out + y * width;
        for (int64_t x = 0; x < width; ++x) {
            const Out c = down[x] + Out(1);
            cur[x] = c < cur[x] ? c : cur[x];
        }
    }
    // Row pass: lower envelope of parabolas.
    auto& f = scratch.f;
    auto& z = scratch.z;
    auto& v = scratch.v;
    f.resize(static_cast<size_t>(width));
    z.resize(static_cast<size_t>(width) + 1);
    v.resize(static_cast<size_t>(width));
    const double sy2 = sy * sy, sx2 = sx * sx;
    for (int64_t y = 0; y < height; ++y) {
        Out* row = out + y * width;
        bool any_fg = false;
        for (int64_t x = 0; x < width; ++x) any_fg |= row[x] != Out(0);
        if (!any_fg) continue;
        int64_t k = -1;
        for (int64_t q = 0; q < width; ++q) {
            const auto sq = static_cast<size_t>(q);
            const Out g = row[q];
            if (g == inf) continue;
            const double fq = sy2 * static_cast<double>(g) * static_cast<double>(g);
            f[sq] = fq;
            const double dq = static_cast<double>(q);
            if (k < 0) {
                k = 0;
                v[0] = q;
                z[0] = -std::numeric_limits<double>::infinity();
                z[1] = std::numeric_limits<double>::infinity();
                continue;
            }
            double s;
            for (;;) {  // z[0] = -inf ends the loop at k = 0
                const int64_t p = v[static_cast<size_t>(k)];
                const double dp = static_cast<double>(p);
                s = ((fq + sx2 * dq * dq) - (f[static_cast<size_t>(p)] + sx2 * dp * dp)) / (2.0 * sx2 * (dq - dp));
                if (s > z[static_cast<size_t>(k)]) break;
                --k;
            }
            ++k;
            v[static_cast<size_t>(k)] = q;
            z[static_cast<size_t>(k)] = s;
            z[static_cast<size_t>(k) + 1] = std::numeric_limits<double>::infinity();
        }
        if (k < 0) continue;  // no zero pixel in any column: stays +inf
        k = 0;
        for (int64_t q = 0; q < width; ++q) {
            const double dq = static_cast<double>(q);
            while (z[static_cast<size_t>(k) + 1] < dq) ++k;
            if (row[q] == Out(0)) continue;
            const int64_t p = v[static_cast<size_t>(k)];
            const double d = dq - static_cast<double>(p);
            const double val = f[static_cast<size_t>(p)] + sx2 * d * d;
            row[q] = static_cast<Out>(Sqrt ? std::sqrt(val) : val);
        }
    }
}

}  // namespace samedenhancer
