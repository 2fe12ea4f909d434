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
// Complexity: O(n^2) per sweep, at most n sweeps; n is the number of filtered components (at most
// 1/min_fraction with the default filter).
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
    const auto area_a = static_cast<double>(a.box.area());
    const auto area_b = static_cast<double>(b.box.area());
    const auto area_ab = static_cast<double>(a.box.united(b.box).area());
    if (!(area_a + area_b > 0.5 * area_ab)) return false;
    const double occ_a = static_cast<double>(a.mask_area) / area_a;
    const double occ_b = static_cast<double>(b.mask_area) / area_b;
    const double fill = static_cast<double>(a.mask_area + b.mask_area) / area_ab;
    return fill > std::min(0.5, std::min(occ_a, occ_b) - 0.1);
}

// Fuses `items` in place with the greedy loop described above.
inline void merge_boxes(std::vector<MergeItem>& items) {
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < items.size(); ++i) {
            size_t j = i + 1;
            while (j < items.size()) {
                if (should_merge(items[i], items[j])) {
                    items[i].box = items[i].box.united(items[j].box);
                    items[i].mask_area += items[j].mask_area;
                    items[i].members.insert(items[i].members.end(), items[j].members.begin(), items[j].members.end());
                    items.erase(items.begin() + static_cast<std::ptrdiff_t>(j));
                    changed = true;
                    j = i + 1;
                } else {
                    ++j;
                }
            }
        }
    }
}

}  // namespace samedenhancer
