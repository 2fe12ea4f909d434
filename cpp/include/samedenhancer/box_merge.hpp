// box_merge.hpp: the greedy box-merge loop that fuses nearby components into one region.
//
// Criterion of SAMRefiner (Lin et al. 2025, "SAMRefiner: Taming Segment Anything Model for
// Universal Mask Refinement", ICLR 2025, arXiv:2502.06756): items i and j merge when
//   area(box_i) + area(box_j) > 0.5 * area(box_ij)   and
//   (m_i + m_j) / area(box_ij) > min(0.5, min(occ_i, occ_j) - 0.1),
// where box_ij is the union box, m the mask area and occ = m / area(box) (box areas count pixels,
// inclusive coordinates). The loop (fixed here, the paper only says "repeat until no pair merges"):
// repeat sweeps i = 0, 1, ...; for each i test j = i+1, ... in order; on a merge, j is folded into
// i (union box, summed mask area, concatenated members), removed, and the scan of j restarts at
// i+1 because the grown item may now reach earlier candidates; stop after a sweep without merges.
// Order is therefore deterministic: the first item of a merged group keeps its place.
// Complexity: O(n^2) per sweep in the worst case, at most n sweeps, n the number of filtered
// components (at most 1/min_fraction with the default filter); with a sorted x index (below) a
// sweep only tests pairs that are close enough in x to pass the first test.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace samedenhancer {

// A group of components being fused: union box, summed mask area, member indices.
struct MergeItem {
    Box box;
    int64_t mask_area = 0;
    std::vector<int64_t> members;
};

// SAMRefiner's merge test for two items.
inline bool should_merge(const MergeItem& a, const MergeItem& b) {
    const int64_t area_a = a.box.area(), area_b = b.box.area();
    const int64_t area_ab = a.box.united(b.box).area();
    if (!(2 * (area_a + area_b) > area_ab)) return false;  // exact integer form of the first test
    const double occ_a = static_cast<double>(a.mask_area) / static_cast<double>(area_a);
    const double occ_b = static_cast<double>(b.mask_area) / static_cast<double>(area_b);
    const double fill = static_cast<double>(a.mask_area + b.mask_area) / static_cast<double>(area_ab);
    return fill > std::min(0.5, std::min(occ_a, occ_b) - 0.1);
}

// Fuses `items` in place with the greedy loop described above. The loop's result is exactly that of
// the plain double loop; two things make it fast on thousands of items: dead items are flagged
// instead of erased, and the "first j > i that merges" is looked up among items whose x-range can
// pass the first test. That test needs the column gap between the boxes to be < w_i + w_j (union
// width >= w_i + w_j + gap, union height >= both heights), so with items sorted by x0 at the start
// of each sweep, only x0 in [x0_i - w_i - 2 w_max, x1_i + w_i + w_max + 1] can qualify; items > i keep
// their boxes until they become current, so the sorted index stays valid during the sweep. When
// that slab holds most live items (an item that has grown over the image), live items are walked
// in index order instead and the walk stops at the first that merges.
inline void merge_boxes(std::vector<MergeItem>& items) {
    const size_t n = items.size();
    std::vector<char> alive(n, 1);
    // skip[k]: a pointer towards the first live index >= k (k itself when alive); n is the sentinel.
    std::vector<size_t> skip(n + 1);
    for (size_t k = 0; k <= n; ++k) skip[k] = k;
    auto next_alive = [&](size_t k) {
        while (skip[k] != k) {
            skip[k] = skip[skip[k]];
            k = skip[k];
        }
        return k;
    };
    size_t alive_count = n;
    std::vector<size_t> order;
    std::vector<int64_t> xs;
    bool changed = true;
    while (changed) {
        changed = false;
        order.clear();
        int64_t wmax = 0;
        for (size_t k = 0; k < n; ++k)
            if (alive[k]) {
                order.push_back(k);
                wmax = std::max(wmax, items[k].box.width());
            }
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return items[a].box.x0 < items[b].box.x0 || (items[a].box.x0 == items[b].box.x0 && a < b);
        });
        xs.resize(order.size());
        for (size_t k = 0; k < order.size(); ++k) xs[k] = items[order[k]].box.x0;
        for (size_t i = 0; i < n; ++i) {
            if (!alive[i]) continue;
            for (;;) {
                const Box& b = items[i].box;
                const int64_t lo = b.x0 - b.width() - 2 * wmax, hi = b.x1 + b.width() + wmax + 1;
                const auto first = std::lower_bound(xs.begin(), xs.end(), lo) - xs.begin();
                const auto last = std::upper_bound(xs.begin(), xs.end(), hi) - xs.begin();
                size_t best = n;
                if (4 * static_cast<size_t>(last - first) < alive_count) {
                    for (auto k = first; k < last; ++k) {
                        const size_t j = order[static_cast<size_t>(k)];
                        if (j > i && j < best && alive[j] && should_merge(items[i], items[j])) best = j;
                    }
                } else {  // wide slab (a grown item): walk live items in index order, stop at the first
                    for (size_t j = next_alive(i + 1); j < n; j = next_alive(j + 1)) {
                        const int64_t x0 = items[j].box.x0;
                        if (x0 >= lo && x0 <= hi && should_merge(items[i], items[j])) {
                            best = j;
                            break;
                        }
                    }
                }
                if (best == n) break;
                MergeItem& a = items[i];
                MergeItem& m = items[best];
                a.box = a.box.united(m.box);
                a.mask_area += m.mask_area;
                a.members.insert(a.members.end(), m.members.begin(), m.members.end());
                alive[best] = 0;
                skip[best] = best + 1;
                --alive_count;
                changed = true;
            }
        }
    }
    size_t w = 0;
    for (size_t k = 0; k < n; ++k)
        if (alive[k]) {
            if (w != k) items[w] = std::move(items[k]);
            ++w;
        }
    items.resize(w);
}

}  // namespace samedenhancer
