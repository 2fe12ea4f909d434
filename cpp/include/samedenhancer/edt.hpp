// edt.hpp: exact Euclidean distance transform of an n-D image (distance of every nonzero voxel to
// the nearest zero voxel), with optional anisotropic voxel spacing.
//
// Algorithm: the separable exact transform of Felzenszwalb & Huttenlocher 2012, "Distance
// Transforms of Sampled Functions", Theory of Computing 8:415-428, doi:10.4086/toc.2012.v008a019:
// one 1-D pass per axis, each the lower envelope of the parabolas f(q) + s^2 (x - q)^2 rooted at the
// squared distances left by the passes before it (s the spacing of that axis). The first pass
// (axis -2, down the columns of each H x W plane) is binary: the 1-D distance to the nearest zero
// in the column, by a forward and a backward sweep (the first phase of Meijster, Roerdink &
// Hesselink 2000, doi:10.1007/0-306-47025-X_36). The envelope passes follow: along the rows (axis
// -1), then along axes -3, -4, ..., 0 (for a volume D x H x W: across the planes, last).
// Changed from the paper: the column pass is done row by row over whole rows (contiguous,
// vectorisable) instead of column by column; every plane gets its two in-plane passes while it is
// in cache, and the passes across planes gather tiles of neighbouring lines into a small
// contiguous buffer (cache-friendly strided access); parabolas with an infinite root (lines without
// any site) are left out of the envelope instead of relying on inf - inf; envelope arithmetic is
// in double so ties between parabolas are resolved exactly for any image size; each envelope pass
// works on one run of nonzero values at a time with only the sites from the zero before it to the
// zero after it (no farther site can be nearer, whatever its root), so its cost follows the
// foreground, and zero voxels are never evaluated. A 2-D image gets exactly the two passes (its
// results are those of the 2-D transform). As in SciPy's distance_transform_edt, voxels outside
// the image are not zeros; an image without any zero voxel gives +inf everywhere (SciPy's result
// there is an artefact). Needs IEEE infinities: never compile with -ffast-math.
// Supported spacings (check_edt_spacing, called by the n-D entry point): every value >= 1e-18 and
// the image's diagonal sqrt(sum((spacing * axis length)^2)) <= 1e18. Then every squared distance,
// from the smallest spacing squared to the squared diagonal, is a normal float32 (the passes across
// planes keep squared distances in the output type, where an underflow to 0 would read as a zero
// voxel and an overflow as "no site"), and every quotient of the envelope is finite (outside that
// range inf - inf or 0 / 0 gave NaN breakpoints, and the envelope walked off its buffers).
// Complexity: O(N) time for N voxels (one pass per axis), O(longest axis x tile) scratch reused
// across lines (and across calls via EdtScratch).
#pragma once

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <limits>
#include <vector>

#include "common.hpp"

namespace samedenhancer {

// The smallest spacing and the largest image diagonal (in spacing units) the transform supports.
inline constexpr double kMinSpacing = 1e-18;
inline constexpr double kMaxDiagonal = 1e18;

// Throws unless every spacing is >= kMinSpacing and the diagonal of an image of `shape`,
// sqrt(sum((spacing * axis length)^2)), is <= kMaxDiagonal (NaN and infinities fail too).
inline void check_edt_spacing(int ndim, const int64_t* shape, const double* spacing) {
    bool ok = true;
    double diagonal2 = 0.0;
    for (int a = 0; a < ndim && ok; ++a) {
        ok = spacing[a] >= kMinSpacing && spacing[a] <= kMaxDiagonal;  // false for NaN
        const double extent = spacing[a] * static_cast<double>(shape[a]);
        diagonal2 += extent * extent;
    }
    if (!ok || !(diagonal2 <= kMaxDiagonal * kMaxDiagonal))
        fail("spacing",
             "positive values >= 1e-18 with the image's diagonal sqrt(sum((spacing * axis length)^2)) <= 1e18 "
             "(squared distances must stay within float32's range)",
             format_values(spacing, ndim) + " for an image of shape " + format_values(shape, ndim));
}

// Scratch buffers of the row pass, reusable between calls.
struct EdtScratch {
    std::vector<double> f, z;
    std::vector<int64_t> v;
    std::vector<float> row_bound;  // argmax_distance only
    std::vector<int64_t> rows;     // argmax_distance only
    std::vector<float> tile_f;     // passes across planes (float output)
    std::vector<double> tile_d;    // passes across planes (double output)
};

namespace detail {

// Column pass (in units of rows): out = distance to the nearest zero of `in` in the same column
// (+inf if the column has none), by a forward then a backward sweep over whole rows.
template <typename T, typename Out>
void edt_column_pass(const T* in, int64_t height, int64_t width, Out* out) {
    constexpr Out inf = std::numeric_limits<Out>::infinity();
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
}

// Envelope pass on one line, in place: lower envelope of parabolas, one segment of nonzero values
// at a time. The roots are sy2 * g^2 (Squared = false: `row` holds 1-D distances in units of the
// previous axis, spacing^2 sy2) or g itself (Squared = true: `row` holds squared distances); +inf
// is no root. A value's nearest site lies within its segment or on the zero bounding it (that
// site has f = 0 and is nearer than anything beyond), so each segment [a, b] only needs sites
// a-1 .. b+1. `scratch` must hold width + 3 entries.
template <bool Sqrt, typename Out, bool Squared = false>
void edt_row_pass(Out* row, int64_t width, EdtScratch& scratch, double sy2, double sx2) {
    constexpr Out inf = std::numeric_limits<Out>::infinity();
    constexpr double dinf = std::numeric_limits<double>::infinity();
    double* f = scratch.f.data();
    double* z = scratch.z.data();
    int64_t* v = scratch.v.data();
    int64_t x = 0;
    for (;;) {
        while (x < width && row[x] == Out(0)) ++x;
        if (x == width) break;
        const int64_t a = x;
        while (x < width && row[x] != Out(0)) ++x;
        const int64_t b = x - 1;
        const int64_t lo = a > 0 ? a - 1 : a, hi = b + 1 < width ? b + 1 : b;
        // Envelope over the finite sites of [lo, hi], in coordinates relative to lo.
        int64_t k = -1;
        for (int64_t q = lo; q <= hi; ++q) {
            const Out g = row[q];
            if (g == inf) continue;
            const int64_t i = q - lo;
            const double fq = Squared ? static_cast<double>(g) : sy2 * static_cast<double>(g) * static_cast<double>(g);
            f[i] = fq;
            const double dq = static_cast<double>(i);
            if (k < 0) {
                k = 0;
                v[0] = i;
                z[0] = -dinf;
                z[1] = dinf;
                continue;
            }
            double s;
            for (;;) {  // z[0] = -inf ends the loop at k = 0 (s is finite: check_edt_spacing)
                const int64_t p = v[k];
                const double dp = static_cast<double>(p);
                s = ((fq + sx2 * dq * dq) - (f[p] + sx2 * dp * dp)) / (2.0 * sx2 * (dq - dp));
                if (s > z[k]) break;
                --k;
            }
            ++k;
            v[k] = i;
            z[k] = s;
            z[k + 1] = dinf;
        }
        if (k < 0) continue;  // no zero pixel in any of these columns: stays +inf
        k = 0;
        for (int64_t q = a; q <= b; ++q) {
            const double dq = static_cast<double>(q - lo);
            while (z[k + 1] < dq) ++k;
            const int64_t p = v[k];
            const double d = dq - static_cast<double>(p);
            const double val = f[p] + sx2 * d * d;
            row[q] = static_cast<Out>(Sqrt ? std::sqrt(val) : val);
        }
    }
}

inline void edt_reserve(EdtScratch& scratch, int64_t width) {
    scratch.f.resize(static_cast<size_t>(width) + 2);
    scratch.z.resize(static_cast<size_t>(width) + 3);
    scratch.v.resize(static_cast<size_t>(width) + 2);
}

// Writes into `out` (H x W, row-major) the squared distance (Sqrt = false) or the distance
// (Sqrt = true) of every nonzero pixel of `in` to the nearest zero pixel; zero pixels get 0.
// Spacing: sy between rows, sx between columns, checked by the caller (check_edt_spacing).
template <bool Sqrt, typename T, typename Out>
void edt_2d(const T* in, int64_t height, int64_t width, Out* out, EdtScratch& scratch, double sy, double sx) {
    if (height <= 0 || width <= 0) return;
    edt_column_pass(in, height, width, out);
    edt_reserve(scratch, width);
    for (int64_t y = 0; y < height; ++y) edt_row_pass<Sqrt>(out + y * width, width, scratch, sy * sy, sx * sx);
}

template <typename Out>
std::vector<Out>& tile_buffer(EdtScratch& scratch);
template <>
inline std::vector<float>& tile_buffer<float>(EdtScratch& scratch) { return scratch.tile_f; }
template <>
inline std::vector<double>& tile_buffer<double>(EdtScratch& scratch) { return scratch.tile_d; }

// Envelope pass along an axis of length n whose lines are `stride` apart (stride > 1), over
// `outer` blocks of n * stride values. Tiles of up to kTile neighbouring lines are gathered into a
// contiguous buffer (line after line), passed, and scattered back.
template <bool Sqrt, typename Out>
void edt_strided_pass(Out* data, int64_t outer, int64_t n, int64_t stride, double s2, EdtScratch& scratch) {
    constexpr int64_t kTile = 32;
    std::vector<Out>& tile = tile_buffer<Out>(scratch);
    tile.resize(static_cast<size_t>(n * kTile));
    Out* t = tile.data();
    for (int64_t o = 0; o < outer; ++o) {
        Out* block = data + o * n * stride;
        for (int64_t j0 = 0; j0 < stride; j0 += kTile) {
            const int64_t m = std::min(kTile, stride - j0);
            bool any = false;
            for (int64_t i = 0; i < n; ++i) {
                const Out* src = block + i * stride + j0;
                for (int64_t b = 0; b < m; ++b) {
                    t[b * n + i] = src[b];
                    any |= src[b] != Out(0);
                }
            }
            if (!any) continue;  // zeros stay zero
            for (int64_t b = 0; b < m; ++b) edt_row_pass<Sqrt, Out, true>(t + b * n, n, scratch, 1.0, s2);
            for (int64_t i = 0; i < n; ++i) {
                Out* dst = block + i * stride + j0;
                for (int64_t b = 0; b < m; ++b) dst[b] = t[b * n + i];
            }
        }
    }
}

}  // namespace detail

// n-D transform: `in` and `out` are row-major with `ndim` >= 1 axes of sizes `shape`, `spacing`
// (ndim values) the voxel size along each axis (checked: check_edt_spacing). Writes the distance
// (Sqrt = true) or the squared distance (Sqrt = false); zero voxels get 0. A 1-D image is one row;
// a 2-D image gets exactly the 2-D transform (detail::edt_2d).
template <bool Sqrt, typename T, typename Out>
void euclidean_distance_transform_nd(const T* in, int ndim, const int64_t* shape, const double* spacing, Out* out,
                                     EdtScratch& scratch) {
    if (ndim <= 0) return;
    check_edt_spacing(ndim, shape, spacing);
    int64_t total = 1;
    for (int a = 0; a < ndim; ++a) total *= shape[a];
    if (total <= 0) return;
    if (ndim == 1) return detail::edt_2d<Sqrt>(in, 1, shape[0], out, scratch, 1.0, spacing[0]);
    if (ndim == 2) return detail::edt_2d<Sqrt>(in, shape[0], shape[1], out, scratch, spacing[0], spacing[1]);
    const int64_t height = shape[ndim - 2], width = shape[ndim - 1], plane = height * width;
    const double sy = spacing[ndim - 2], sx = spacing[ndim - 1];
    for (int64_t p = 0; p < total / plane; ++p)
        detail::edt_2d<false>(in + p * plane, height, width, out + p * plane, scratch, sy, sx);
    int64_t longest = width;
    for (int a = 0; a < ndim; ++a) longest = std::max(longest, shape[a]);
    detail::edt_reserve(scratch, longest);
    int64_t stride = plane;
    for (int a = ndim - 3; a >= 0; --a) {
        const int64_t outer = total / (stride * shape[a]);
        const double s2 = spacing[a] * spacing[a];
        if (a == 0)
            detail::edt_strided_pass<Sqrt>(out, outer, shape[a], stride, s2, scratch);
        else
            detail::edt_strided_pass<false>(out, outer, shape[a], stride, s2, scratch);
        stride *= shape[a];
    }
}

// The first pixel in raster order of `in` (H x W, nonzero = feature) with the largest distance to
// the nearest zero pixel; returns its flat index and writes the squared distance to `best`.
// Only the rows that can hold the maximum get a row pass: a pixel's distance is at most its column
// distance, so rows are visited in decreasing order of their largest column distance and the
// search stops once that bound falls below the best found (for a compact region, a few rows).
// `buf` is H x W scratch (left holding column distances and some finished rows).
template <typename T>
int64_t argmax_distance(const T* in, int64_t height, int64_t width, float* buf, EdtScratch& scratch, float& best) {
    best = 0.0f;
    if (height <= 0 || width <= 0) return 0;
    detail::edt_column_pass(in, height, width, buf);
    detail::edt_reserve(scratch, width);
    auto& ub = scratch.row_bound;
    auto& rows = scratch.rows;
    ub.resize(static_cast<size_t>(height));
    for (int64_t y = 0; y < height; ++y) {
        const float* row = buf + y * width;
        float m = 0.0f;
        for (int64_t x = 0; x < width; ++x) m = row[x] > m ? row[x] : m;
        ub[static_cast<size_t>(y)] = m * m;
    }
    rows.resize(static_cast<size_t>(height));
    for (int64_t y = 0; y < height; ++y) rows[static_cast<size_t>(y)] = y;
    std::stable_sort(rows.begin(), rows.end(),
                     [&](int64_t a, int64_t b) { return ub[static_cast<size_t>(a)] > ub[static_cast<size_t>(b)]; });
    int64_t best_index = 0;
    int64_t best_y = height;
    for (const int64_t y : rows) {
        const float u = ub[static_cast<size_t>(y)];
        if (u < best || u == 0.0f) break;
        if (u == best && y > best_y) continue;  // can at most tie, and later in raster order
        float* row = buf + y * width;
        detail::edt_row_pass<false>(row, width, scratch, 1.0, 1.0);
        for (int64_t x = 0; x < width; ++x) {
            if (row[x] > best || (row[x] == best && row[x] > 0.0f && y < best_y)) {
                best = row[x];
                best_y = y;
                best_index = y * width + x;
            }
        }
    }
    return best_index;
}

// Squared Euclidean distance from every pixel of an H x W window to the nearest site, where all
// sites lie in the column band [band0, band0 + band_width) and `sites` (H x band_width, row-major,
// nonzero = site) marks them. The same two passes as above, but the column pass runs over the band
// only and the envelope holds only band columns, while every column of the window is evaluated.
// Rows are produced one at a time, top to bottom: `on_row(y, const float* row)` receives each (W
// values, +inf where no site exists) and returns false to stop early. `column` is scratch.
// Complexity: O(H * band_width) for the column pass plus O(band_width + W) per row produced.
template <typename OnRow>
void squared_distance_to_band_sites(const uint8_t* sites, int64_t height, int64_t band0, int64_t band_width,
                                    int64_t width, std::vector<float>& column, EdtScratch& scratch, OnRow&& on_row) {
    constexpr float inf = std::numeric_limits<float>::infinity();
    constexpr double dinf = std::numeric_limits<double>::infinity();
    column.resize(static_cast<size_t>(height * band_width + width));
    float* g = column.data();
    float* orow = g + height * band_width;
    for (int64_t x = 0; x < band_width; ++x) g[x] = sites[x] ? 0.0f : inf;
    for (int64_t y = 1; y < height; ++y) {
        const uint8_t* row = sites + y * band_width;
        const float* up = g + (y - 1) * band_width;
        float* cur = g + y * band_width;
        for (int64_t x = 0; x < band_width; ++x) cur[x] = row[x] ? 0.0f : up[x] + 1.0f;
    }
    for (int64_t y = height - 2; y >= 0; --y) {
        const float* down = g + (y + 1) * band_width;
        float* cur = g + y * band_width;
        for (int64_t x = 0; x < band_width; ++x) {
            const float c = down[x] + 1.0f;
            cur[x] = c < cur[x] ? c : cur[x];
        }
    }
    auto& f = scratch.f;
    auto& z = scratch.z;
    auto& v = scratch.v;
    f.resize(static_cast<size_t>(band_width));
    z.resize(static_cast<size_t>(band_width) + 1);
    v.resize(static_cast<size_t>(band_width));
    for (int64_t y = 0; y < height; ++y) {
        const float* grow = g + y * band_width;
        int64_t k = -1;
        for (int64_t q = 0; q < band_width; ++q) {
            if (grow[q] == inf) continue;
            const double fq = static_cast<double>(grow[q]) * static_cast<double>(grow[q]);
            f[static_cast<size_t>(q)] = fq;
            const double dq = static_cast<double>(q);
            if (k < 0) {
                k = 0;
                v[0] = q;
                z[0] = -dinf;
                z[1] = dinf;
                continue;
            }
            double s;
            for (;;) {
                const int64_t p = v[static_cast<size_t>(k)];
                const double dp = static_cast<double>(p);
                s = ((fq + dq * dq) - (f[static_cast<size_t>(p)] + dp * dp)) / (2.0 * (dq - dp));
                if (s > z[static_cast<size_t>(k)]) break;
                --k;
            }
            ++k;
            v[static_cast<size_t>(k)] = q;
            z[static_cast<size_t>(k)] = s;
            z[static_cast<size_t>(k) + 1] = dinf;
        }
        if (k < 0) {
            std::fill(orow, orow + width, inf);
        } else {
            k = 0;
            for (int64_t x = 0; x < width; ++x) {
                const double dq = static_cast<double>(x - band0);  // window column in band coordinates
                while (z[static_cast<size_t>(k) + 1] < dq) ++k;
                const int64_t p = v[static_cast<size_t>(k)];
                const double d = dq - static_cast<double>(p);
                orow[x] = static_cast<float>(f[static_cast<size_t>(p)] + d * d);
            }
        }
        if (!on_row(y, static_cast<const float*>(orow))) return;
    }
}

}  // namespace samedenhancer
