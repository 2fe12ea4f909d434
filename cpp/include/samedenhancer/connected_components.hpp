// connected_components.hpp: run-based connected-component labelling of a label map, with the
// area, bounding box and first pixel of every component gathered in the same pass.
//
// Algorithm: the run-length variant of two-pass labelling with union-find (Rosenfeld & Pfaltz
// 1966, doi:10.1145/321356.321357; run-based form as in He, Chao & Suzuki 2008, "A run-based
// two-scan labeling algorithm", IEEE TIP 17(5):749-756, doi:10.1109/TIP.2008.919369). Pass one
// splits every row into maximal runs of one nonzero value and unites each run with the runs of the
// previous row that touch it (8-connectivity: overlapping columns widened by one; 4-connectivity:
// overlapping columns) and carry the same value, so every class of a multi-class label map is
// labelled in the same single pass. Union-find keeps the smaller run index as the root, so a
// component's root is its first run and components are numbered in raster order of their first
// pixel (top-most row, then left-most column). Pass two is over runs, not pixels: it resolves the
// roots and accumulates area and box per component; writing a label image is optional.
// Changed from He et al.: equivalences are kept in a plain union-find with path halving instead
// of their three label tables (simpler; the number of runs is small next to the pixel count), and
// runs compare values, not just foreground, so classes never merge with each other.
// Complexity: O(H*W) for the row scan (8 pixels per step through uniform stretches of 8-bit
// maps), O(R alpha(R)) for the R runs, O(H*W) to write labels.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "common.hpp"

namespace samedenhancer {

// The runs of a label map and the components they form. Vectors are reused between calls.
struct RunSet {
    std::vector<int32_t> y, x0, x1;      // row and inclusive column range of each run
    std::vector<int64_t> value;          // the label value of each run (nonzero)
    std::vector<int64_t> row_start;      // runs of row y are [row_start[y], row_start[y + 1])
    std::vector<int64_t> parent;         // union-find forest over runs
    std::vector<int64_t> component;      // component index of each run (after label_runs)
};

// One connected component: its value (class), pixel count, tight box and first run (raster order).
struct Component {
    int64_t value = 0;
    int64_t area = 0;
    Box box;
    int64_t first_run = 0;
};

namespace detail {
inline int64_t find_root(std::vector<int64_t>& parent, int64_t i) {
    while (parent[static_cast<size_t>(i)] != i) {
        const auto up = parent[static_cast<size_t>(parent[static_cast<size_t>(i)])];
        parent[static_cast<size_t>(i)] = up;
        i = up;
    }
    return i;
}
inline void unite(std::vector<int64_t>& parent, int64_t a, int64_t b) {
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a < b) parent[static_cast<size_t>(b)] = a;
    else if (b < a) parent[static_cast<size_t>(a)] = b;
}
}  // namespace detail

// Splits the rows of the H x W row-major label map `img` into runs of equal nonzero values.
template <typename T>
void find_runs(const T* img, int64_t height, int64_t width, RunSet& runs) {
    runs.y.clear(); runs.x0.clear(); runs.x1.clear(); runs.value.clear();
    runs.row_start.assign(static_cast<size_t>(height + 1), 0);
    for (int64_t yy = 0; yy < height; ++yy) {
        runs.row_start[static_cast<size_t>(yy)] = static_cast<int64_t>(runs.x0.size());
        const T* row = img + yy * width;
        int64_t x = 0;
        while (x < width) {
            if constexpr (sizeof(T) == 1) {  // skip 8 background bytes at a time
                uint64_t word;
                while (x + 8 <= width && (std::memcpy(&word, row + x, 8), word == 0)) x += 8;
            }
            while (x < width && row[x] == T(0)) ++x;
            if (x == width) break;
            const T v = row[x];
            const int64_t start = x;
            if constexpr (sizeof(T) == 1) {  // and 8 bytes of the same value
                const uint64_t same = 0x0101010101010101ULL * static_cast<uint8_t>(v);
                uint64_t word;
                while (x + 8 <= width && (std::memcpy(&word, row + x, 8), word == same)) x += 8;
            }
            while (x < width && row[x] == v) ++x;
            runs.y.push_back(static_cast<int32_t>(yy));
            runs.x0.push_back(static_cast<int32_t>(start));
            runs.x1.push_back(static_cast<int32_t>(x - 1));
            runs.value.push_back(static_cast<int64_t>(v));
        }
    }
    runs.row_start[static_cast<size_t>(height)] = static_cast<int64_t>(runs.x0.size());
}

// Unites touching runs of equal value (connectivity 4 or 8), then numbers the components in raster
// order of their first pixel: afterwards runs.component[r] is the component index of run r.
// Returns the components with area, box and first run.
inline std::vector<Component> label_runs(RunSet& runs, int64_t height, int connectivity) {
    if (connectivity != 4 && connectivity != 8) fail("connectivity", "4 or 8", std::to_string(connectivity));
    const int64_t n = static_cast<int64_t>(runs.x0.size());
    auto& parent = runs.parent;
    parent.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) parent[static_cast<size_t>(i)] = i;
    const int32_t widen = connectivity == 8 ? 1 : 0;
    for (int64_t yy = 1; yy < height; ++yy) {
        int64_t p = runs.row_start[static_cast<size_t>(yy - 1)];
        const int64_t p_end = runs.row_start[static_cast<size_t>(yy)];
        const int64_t c_end = runs.row_start[static_cast<size_t>(yy + 1)];
        for (int64_t c = p_end; c < c_end && p < p_end; ++c) {
            const int32_t lo = runs.x0[static_cast<size_t>(c)] - widen;
            const int32_t hi = runs.x1[static_cast<size_t>(c)] + widen;
            while (p < p_end && runs.x1[static_cast<size_t>(p)] < lo) ++p;
            for (int64_t q = p; q < p_end && runs.x0[static_cast<size_t>(q)] <= hi; ++q) {
                if (runs.value[static_cast<size_t>(q)] == runs.value[static_cast<size_t>(c)]) detail::unite(parent, q, c);
            }
        }
    }
    // parent[i] <= i always (roots are the smaller index), so one ascending sweep resolves ids.
    auto& comp = runs.component;
    comp.resize(static_cast<size_t>(n));
    std::vector<Component> comps;
    for (int64_t i = 0; i < n; ++i) {
        const auto si = static_cast<size_t>(i);
        int64_t id;
        if (parent[si] == i) {
            id = static_cast<int64_t>(comps.size());
            Component c;
            c.value = runs.value[si];
            c.first_run = i;
            c.box = Box{runs.x0[si], runs.y[si], runs.x1[si], runs.y[si]};
            comps.push_back(c);
        } else {
            id = comp[static_cast<size_t>(parent[si])];
        }
        comp[si] = id;
        Component& c = comps[static_cast<size_t>(id)];
        c.area += runs.x1[si] - runs.x0[si] + 1;
        c.box.x0 = std::min<int64_t>(c.box.x0, runs.x0[si]);
        c.box.x1 = std::max<int64_t>(c.box.x1, runs.x1[si]);
        c.box.y1 = runs.y[si];
    }
    return comps;
}

// Writes label i+1 of component i (0 for background) into the H x W image `labels`.
inline void write_labels(const RunSet& runs, int64_t height, int64_t width, int32_t* labels) {
    for (int64_t yy = 0; yy < height; ++yy) {
        int32_t* row = labels + yy * width;
        int64_t x = 0;
        for (int64_t r = runs.row_start[static_cast<size_t>(yy)]; r < runs.row_start[static_cast<size_t>(yy + 1)]; ++r) {
            const auto sr = static_cast<size_t>(r);
            for (; x < runs.x0[sr]; ++x) row[x] = 0;
            const auto lab = static_cast<int32_t>(runs.component[sr] + 1);
            for (; x <= runs.x1[sr]; ++x) row[x] = lab;
        }
        for (; x < width; ++x) row[x] = 0;
    }
}

}  // namespace samedenhancer
