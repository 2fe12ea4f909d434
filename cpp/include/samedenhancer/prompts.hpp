// prompts.hpp: Morphological Split-Filter-Fuse (MSFF) and prompt mining for every class of a label
// map in one call: per merged region a tight box, a box with margin, a positive and a negative point.
//
// Method: SAMedEnhancer (Zhou et al., "Generic medical image segmentation enhancement by adapting
// Segment Anything Model"; the rules below fix what the paper leaves open), with the fuse
// criterion of SAMRefiner (Lin et al., ICLR 2025, arXiv:2502.06756, see box_merge.hpp).
// Per class c: split into 8-connected components (connected_components.hpp, all classes in one
// pass); keep those with area >= min_area and area >= min_fraction * (pixels of class c);
// optionally keep those with IPQ >= the mean IPQ of the kept set (perimeter.hpp; skipped when one
// is left); fuse with the SAMRefiner loop; prior "single" keeps the merged region of largest mask
// area (first on ties). A present class with no surviving region is reported as dropped.
// Per merged region M:
// - positive point: argmax over M of the exact Euclidean distance to the nearest pixel outside M,
//   where pixels outside the image count as outside M (as the click simulation of SAM/RITM pads
//   the mask), so the point keeps away from the image border; ties: first pixel in raster order;
// - negative point: over the ring D \ F, where D = pixels within Euclidean distance ring_radius of M
//   (dilation by the exact disk) and F = every pixel of class c, the pixel farthest from M; ties:
//   first in raster order; an empty ring is reported (has_negative = false) instead of a point;
// - box: the tight box grown by box_margin on each side, or by min(10, side / 10) (integer
//   division, per axis) when box_margin is -1, clipped to the image;
// - IPQ: 4*pi*area / (sum of member perimeters)^2, clamped to <= 1.
// Changed from research implementations (which run a full-image distance transform per region):
// both transforms run on the region's box grown by 1 (positive) or by ring_radius (negative, with
// the column pass confined to the tight box's columns, where all of M lies, rows produced top to
// bottom and the search stopped at the first pixel at distance exactly ring_radius),
// which gives identical results, because the nearest pixel outside M lies within one pixel of M's
// box and the ring lies within ring_radius of it. Labels are never materialised per component:
// runs drive everything, and components are traced on the label map itself.
// The positive point needs only the argmax of the transform, so only the rows whose column
// distances can reach the maximum get a row pass (edt.hpp, argmax_distance).
// Complexity: O(H*W) for the labelling and the regions map; per region, O(box area) for the
// positive point (column pass; row passes for a few rows) and O((box height + 2 r) * box width) for the ring's column pass plus
// O(box width + 2 r) per ring row scanned (the scan usually ends in its first row, where a pixel
// at distance exactly r lies above the region). Scratch buffers are reused across regions.
// Steps (one function each, in detail::): bucket_runs and group_by_class once; per class
// filter_class (split, filter) and fuse_class; per merged region region_prompt (margin_box,
// positive_point, negative_point). Options are checked first (check_prompt_options).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "box_merge.hpp"
#include "common.hpp"
#include "connected_components.hpp"
#include "edt.hpp"
#include "perimeter.hpp"

namespace samedenhancer {

struct PromptOptions {
    int64_t ring_radius = 20;
    int64_t box_margin = -1;  // -1: min(10, side / 10) per axis
    int64_t min_area = 5;
    double min_fraction = 0.1;
    bool ipq_filter = false;
};

// Throws unless ring_radius >= 0, box_margin >= -1, min_area >= 0 and min_fraction is in [0, 1].
inline void check_prompt_options(const PromptOptions& opt) {
    if (opt.ring_radius < 0) fail("ring_radius", "an integer >= 0", std::to_string(opt.ring_radius));
    if (opt.box_margin < -1)
        fail("box_margin", "an integer >= 0, or -1 for min(10, side / 10) per axis", std::to_string(opt.box_margin));
    if (opt.min_area < 0) fail("min_area", "an integer >= 0", std::to_string(opt.min_area));
    if (!(opt.min_fraction >= 0.0 && opt.min_fraction <= 1.0))  // false for NaN
        fail("min_fraction", "a number in [0, 1]", format_number(opt.min_fraction));
}

// Domain prior per class: classes listed in `single` keep only their largest region; every other
// class uses `default_single`, except those listed in `multi`.
struct Prior {
    bool default_single = false;
    std::vector<int64_t> single, multi;
    bool is_single(int64_t c) const {
        if (std::find(single.begin(), single.end(), c) != single.end()) return true;
        if (std::find(multi.begin(), multi.end(), c) != multi.end()) return false;
        return default_single;
    }
};

struct RegionPrompt {
    int64_t class_id = 0;
    Box box, tight;
    int64_t pos_x = 0, pos_y = 0, neg_x = 0, neg_y = 0;
    bool has_negative = false;
    int64_t area = 0;
    double ipq = 1.0;
};

struct PromptResult {
    std::vector<RegionPrompt> regions;
    std::vector<int64_t> classes, dropped_classes;  // ascending
};

// Buffers reused between classes, regions (and calls).
struct PromptScratch {
    RunSet runs;
    EdtScratch edt;
    std::vector<uint8_t> mask;
    std::vector<float> dist, column;
    std::vector<int64_t> run_offsets, run_order;  // runs bucketed by component
    std::vector<int64_t> by_class, kept;          // component indices
    std::vector<double> perimeter, ipq;
    std::vector<MergeItem> items;                 // the merged regions of one class
};

namespace detail {

// Buckets the runs by component with a counting sort (raster order kept inside each component):
// the runs of component c are run_order[run_offsets[c] .. run_offsets[c + 1]).
inline void bucket_runs(size_t n_comp, PromptScratch& s) {
    const std::vector<int64_t>& component = s.runs.component;
    auto& offsets = s.run_offsets;
    offsets.assign(n_comp + 1, 0);
    for (const int64_t c : component) ++offsets[static_cast<size_t>(c) + 1];
    for (size_t c = 0; c < n_comp; ++c) offsets[c + 1] += offsets[c];
    s.run_order.resize(component.size());
    std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1);
    for (size_t r = 0; r < component.size(); ++r)
        s.run_order[static_cast<size_t>(fill[static_cast<size_t>(component[r])]++)] = static_cast<int64_t>(r);
}

// Calls fn(y, x0, x1) for every run of every member component of `item` (raster order per member).
template <typename Fn>
inline void for_region_runs(const PromptScratch& s, const MergeItem& item, Fn&& fn) {
    for (const int64_t member : item.members) {
        const auto c = static_cast<size_t>(member);
        for (int64_t k = s.run_offsets[c]; k < s.run_offsets[c + 1]; ++k) {
            const auto r = static_cast<size_t>(s.run_order[static_cast<size_t>(k)]);
            fn(static_cast<int64_t>(s.runs.y[r]), static_cast<int64_t>(s.runs.x0[r]),
               static_cast<int64_t>(s.runs.x1[r]));
        }
    }
}

// Component indices grouped by class value (ascending), raster order inside a class.
inline void group_by_class(const std::vector<Component>& comps, std::vector<int64_t>& by_class) {
    by_class.resize(comps.size());
    for (size_t i = 0; i < comps.size(); ++i) by_class[i] = static_cast<int64_t>(i);
    std::stable_sort(by_class.begin(), by_class.end(), [&](int64_t a, int64_t b) {
        return comps[static_cast<size_t>(a)].value < comps[static_cast<size_t>(b)].value;
    });
}

// Split and filter one class (the components by_class[begin, end), `total` pixels): into s.kept
// those with area >= min_area and >= min_fraction * total, then, with ipq_filter and more than one
// left, those with IPQ >= the mean IPQ of the kept set; s.perimeter is set for the kept.
template <typename T>
inline void filter_class(const T* labels, int64_t height, int64_t width, const std::vector<Component>& comps,
                         size_t begin, size_t end, int64_t total, const PromptOptions& opt, PromptScratch& s) {
    const auto cls_t = static_cast<T>(comps[static_cast<size_t>(s.by_class[begin])].value);
    auto in_class = [&](int64_t y, int64_t x) { return labels[y * width + x] == cls_t; };
    s.kept.clear();
    for (size_t k = begin; k < end; ++k) {
        const Component& c = comps[static_cast<size_t>(s.by_class[k])];
        if (c.area >= opt.min_area && static_cast<double>(c.area) >= opt.min_fraction * static_cast<double>(total))
            s.kept.push_back(s.by_class[k]);
    }
    s.ipq.clear();
    for (const int64_t i : s.kept) {
        const Component& c = comps[static_cast<size_t>(i)];
        const auto fr = static_cast<size_t>(c.first_run);
        const double per = outer_perimeter(s.runs.y[fr], s.runs.x0[fr], height, width, in_class);
        s.perimeter[static_cast<size_t>(i)] = per;
        s.ipq.push_back(isoperimetric_quotient(static_cast<double>(c.area), per));
    }
    if (!opt.ipq_filter || s.kept.size() <= 1) return;
    double sum = 0.0;
    for (const double q : s.ipq) sum += q;
    const double mean = sum / static_cast<double>(s.ipq.size());
    size_t w = 0;
    for (size_t k = 0; k < s.kept.size(); ++k)
        if (s.ipq[k] >= mean) s.kept[w++] = s.kept[k];
    s.kept.resize(w);
}

// Fuse the kept components of one class into s.items with the SAMRefiner loop; a "single" class
// then keeps only the merged region of largest mask area (the first on ties).
inline void fuse_class(const std::vector<Component>& comps, bool single, PromptScratch& s) {
    s.items.clear();
    for (const int64_t i : s.kept) {
        const Component& c = comps[static_cast<size_t>(i)];
        s.items.push_back(MergeItem{c.box, c.area, {i}});
    }
    merge_boxes(s.items);
    if (!single || s.items.size() <= 1) return;
    size_t best = 0;
    for (size_t k = 1; k < s.items.size(); ++k)
        if (s.items[k].mask_area > s.items[best].mask_area) best = k;
    MergeItem keep = std::move(s.items[best]);
    s.items.clear();
    s.items.push_back(std::move(keep));
}

// The tight box grown by box_margin on each side (-1: min(10, side / 10) per axis), clipped to the
// image; a margin past the image's extent changes nothing and is capped there (no overflow).
inline Box margin_box(const Box& tight, int64_t box_margin, int64_t height, int64_t width) {
    const int64_t cap = std::min(box_margin, height + width);
    const int64_t mx = box_margin >= 0 ? cap : std::min<int64_t>(10, tight.width() / 10);
    const int64_t my = box_margin >= 0 ? cap : std::min<int64_t>(10, tight.height() / 10);
    return Box{std::max<int64_t>(0, tight.x0 - mx), std::max<int64_t>(0, tight.y0 - my),
               std::min<int64_t>(width - 1, tight.x1 + mx), std::min<int64_t>(height - 1, tight.y1 + my)};
}

// Positive point: the argmax of the region's EDT on its box grown by one (outside the image counts
// as outside the region).
inline void positive_point(const MergeItem& item, PromptScratch& s, RegionPrompt& rp) {
    const Box& b = item.box;
    const int64_t bw = b.width() + 2, bh = b.height() + 2;
    s.mask.assign(static_cast<size_t>(bw * bh), 0);
    s.dist.resize(static_cast<size_t>(bw * bh));
    for_region_runs(s, item, [&](int64_t y, int64_t x0, int64_t x1) {
        uint8_t* row = s.mask.data() + (y - b.y0 + 1) * bw;
        std::fill(row + (x0 - b.x0 + 1), row + (x1 - b.x0 + 2), uint8_t(1));
    });
    float value = 0.0f;
    const int64_t best = argmax_distance(s.mask.data(), bh, bw, s.dist.data(), s.edt, value);
    rp.pos_y = b.y0 - 1 + best / bw;
    rp.pos_x = b.x0 - 1 + best % bw;
}

// Negative point: the pixel not of the region's class within `radius` of it and farthest from it,
// over the box grown by `radius`, the region's sites confined to the columns of its tight box. Rows
// come top to bottom and the scan stops at the first pixel at distance exactly `radius` (nothing
// can beat it); none found leaves has_negative false.
template <typename T>
inline void negative_point(const T* labels, int64_t height, int64_t width, int64_t radius, const MergeItem& item,
                           PromptScratch& s, RegionPrompt& rp) {
    const auto cls_t = static_cast<T>(rp.class_id);
    const Box& b = item.box;
    const Box g = b.grown(radius, height, width);
    const int64_t gw = g.width(), gh = g.height(), bw = b.width();
    s.mask.assign(static_cast<size_t>(bw * gh), 0);
    for_region_runs(s, item, [&](int64_t y, int64_t x0, int64_t x1) {
        uint8_t* row = s.mask.data() + (y - g.y0) * bw;
        std::fill(row + (x0 - b.x0), row + (x1 - b.x0 + 1), uint8_t(1));
    });
    const auto limit = static_cast<float>(radius * radius);
    float best = 0.0f;
    auto scan = [&](int64_t y, const float* d) {
        const T* lab = labels + (g.y0 + y) * width + g.x0;
        for (int64_t x = 0; x < gw; ++x) {
            if (d[x] > best && d[x] <= limit && lab[x] != cls_t) {
                best = d[x];
                rp.neg_x = g.x0 + x;
                rp.neg_y = g.y0 + y;
                rp.has_negative = true;
                if (best == limit) return false;
            }
        }
        return true;
    };
    squared_distance_to_band_sites(s.mask.data(), gh, b.x0 - g.x0, bw, gw, s.column, s.edt, scan);
}

// The prompt of one merged region of class `cls` (boxes, area, IPQ, both points); its pixels are
// painted `id` in `regions_out`.
template <typename T>
inline RegionPrompt region_prompt(const T* labels, int64_t height, int64_t width, int64_t cls, int64_t radius,
                                  int64_t box_margin, const MergeItem& item, int32_t id, int32_t* regions_out,
                                  PromptScratch& s) {
    RegionPrompt rp;
    rp.class_id = cls;
    rp.tight = item.box;
    rp.box = margin_box(item.box, box_margin, height, width);
    rp.area = item.mask_area;
    double per = 0.0;
    for (const int64_t i : item.members) per += s.perimeter[static_cast<size_t>(i)];
    rp.ipq = isoperimetric_quotient(static_cast<double>(item.mask_area), per);
    for_region_runs(s, item, [&](int64_t y, int64_t x0, int64_t x1) {
        std::fill(regions_out + y * width + x0, regions_out + y * width + x1 + 1, id);
    });
    positive_point(item, s, rp);
    negative_point(labels, height, width, radius, item, s, rp);
    return rp;
}

}  // namespace detail

// Mines prompts for every class of the H x W row-major label map `labels` (values >= 0, 0 is
// background). Writes the regions map (i + 1 for result.regions[i], 0 elsewhere) to `regions_out`.
template <typename T>
inline void mine_prompts(const T* labels, int64_t height, int64_t width, const PromptOptions& opt, const Prior& prior,
                         int32_t* regions_out, PromptResult& result, PromptScratch& scratch) {
    check_prompt_options(opt);
    result = PromptResult{};
    std::fill(regions_out, regions_out + height * width, int32_t(0));
    find_runs(labels, height, width, scratch.runs);
    const std::vector<Component> comps = label_runs(scratch.runs, height, 8);
    const size_t n_comp = comps.size();
    detail::bucket_runs(n_comp, scratch);
    detail::group_by_class(comps, scratch.by_class);
    scratch.perimeter.assign(n_comp, 0.0);
    // Every pixel of the image lies within height + width of every other: a larger radius changes nothing.
    const int64_t radius = std::min(opt.ring_radius, height + width);
    const auto value_at = [&](size_t k) { return comps[static_cast<size_t>(scratch.by_class[k])].value; };
    for (size_t begin = 0, end = 0; begin < n_comp; begin = end) {
        const int64_t cls = value_at(begin);
        int64_t total = 0;
        for (end = begin; end < n_comp && value_at(end) == cls; ++end)
            total += comps[static_cast<size_t>(scratch.by_class[end])].area;
        result.classes.push_back(cls);
        detail::filter_class(labels, height, width, comps, begin, end, total, opt, scratch);
        detail::fuse_class(comps, prior.is_single(cls), scratch);
        if (scratch.items.empty()) result.dropped_classes.push_back(cls);
        for (const MergeItem& item : scratch.items) {
            const auto id = static_cast<int32_t>(result.regions.size() + 1);
            result.regions.push_back(detail::region_prompt(labels, height, width, cls, radius, opt.box_margin, item, id,
                                                           regions_out, scratch));
        }
    }
}

}  // namespace samedenhancer
