// prompts.hpp: Morphological Split-Filter-Fuse (MSFF) and prompt mining for every class of a label
// map in one call: per merged region a tight box, a box with margin, a positive and a negative point.
//
// Method: SAMedEnhancer (Zhou et al., "Generic medical image segmentation enhancement by adapting
// Segment Anything Model"; the project's METHOD.md §1-2 fixes what the paper leaves open), with the
// fuse criterion of SAMRefiner (Lin et al., ICLR 2025, arXiv:2502.06756, see box_merge.hpp).
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
//   division, per axis) when box_margin < 0, clipped to the image;
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
    int64_t box_margin = -1;  // < 0: min(10, side / 10) per axis
    int64_t min_area = 5;
    double min_fraction = 0.1;
    bool ipq_filter = false;
};

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
    std::vector<int64_t> classes, dropped_classes;
};

// Buffers reused between regions (and calls).
struct PromptScratch {
    RunSet runs;
    EdtScratch edt;
    std::vector<uint8_t> mask;
    std::vector<float> dist, column;
    std::vector<int64_t> run_offsets, run_order;
};

// Mines prompts for every class of the H x W row-major label map `labels` (values >= 0, 0 is
// background). Writes the regions map (i + 1 for result.regions[i], 0 elsewhere) to `regions_out`.
template <typename T>
void mine_prompts(const T* labels, int64_t height, int64_t width, const PromptOptions& opt, const Prior& prior,
                  int32_t* regions_out, PromptResult& result, PromptScratch& scratch) {
    if (opt.ring_radius < 0) fail("ring_radius", "an integer >= 0", std::to_string(opt.ring_radius));
    result = PromptResult{};
    auto& runs = scratch.runs;
    find_runs(labels, height, width, runs);
    const std::vector<Component> comps = label_runs(runs, height, 8);
    const auto n_comp = comps.size();
    const auto n_runs = runs.x0.size();
    std::fill(regions_out, regions_out + height * width, int32_t(0));

    // Runs bucketed by component (counting sort keeps raster order inside each component).
    auto& offsets = scratch.run_offsets;
    auto& order = scratch.run_order;
    offsets.assign(n_comp + 1, 0);
    for (size_t r = 0; r < n_runs; ++r) ++offsets[static_cast<size_t>(runs.component[r]) + 1];
    for (size_t c = 0; c < n_comp; ++c) offsets[c + 1] += offsets[c];
    order.resize(n_runs);
    {
        std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1);
        for (size_t r = 0; r < n_runs; ++r) order[static_cast<size_t>(fill[static_cast<size_t>(runs.component[r])]++)] = static_cast<int64_t>(r);
    }
    auto for_runs = [&](int64_t comp, auto&& fn) {
        for (int64_t k = offsets[static_cast<size_t>(comp)]; k < offsets[static_cast<size_t>(comp) + 1]; ++k) {
            const auto r = static_cast<size_t>(order[static_cast<size_t>(k)]);
            fn(static_cast<int64_t>(runs.y[r]), static_cast<int64_t>(runs.x0[r]), static_cast<int64_t>(runs.x1[r]));
        }
    };

    // Components grouped by class, raster order inside a class.
    std::vector<int64_t> by_class(n_comp);
    for (size_t i = 0; i < n_comp; ++i) by_class[i] = static_cast<int64_t>(i);
    std::stable_sort(by_class.begin(), by_class.end(), [&](int64_t a, int64_t b) {
        return comps[static_cast<size_t>(a)].value < comps[static_cast<size_t>(b)].value;
    });

    // Every pixel of the image lies within height + width of every other: a larger radius changes nothing.
    const int64_t radius = std::min(opt.ring_radius, height + width);
    const int64_t r2 = radius * radius;
    std::vector<double> perimeter(n_comp, 0.0);
    std::vector<MergeItem> items;
    std::vector<int64_t> kept;
    std::vector<double> ipq;
    size_t begin = 0;
    while (begin < n_comp) {
        const int64_t cls = comps[static_cast<size_t>(by_class[begin])].value;
        const T cls_t = static_cast<T>(cls);
        size_t end = begin;
        int64_t total = 0;
        while (end < n_comp && comps[static_cast<size_t>(by_class[end])].value == cls) {
            total += comps[static_cast<size_t>(by_class[end])].area;
            ++end;
        }
        result.classes.push_back(cls);
        auto in_class = [&](int64_t y, int64_t x) { return labels[y * width + x] == cls_t; };

        // Filter.
        kept.clear();
        for (size_t k = begin; k < end; ++k) {
            const Component& c = comps[static_cast<size_t>(by_class[k])];
            if (c.area >= opt.min_area && static_cast<double>(c.area) >= opt.min_fraction * static_cast<double>(total))
                kept.push_back(by_class[k]);
        }
        ipq.clear();
        for (const int64_t i : kept) {
            const Component& c = comps[static_cast<size_t>(i)];
            const auto fr = static_cast<size_t>(c.first_run);
            perimeter[static_cast<size_t>(i)] = outer_perimeter(runs.y[fr], runs.x0[fr], height, width, in_class);
            ipq.push_back(isoperimetric_quotient(static_cast<double>(c.area), perimeter[static_cast<size_t>(i)]));
        }
        if (opt.ipq_filter && kept.size() > 1) {
            double sum = 0.0;
            for (const double q : ipq) sum += q;
            const double mean = sum / static_cast<double>(ipq.size());
            size_t w = 0;
            for (size_t k = 0; k < kept.size(); ++k)
                if (ipq[k] >= mean) kept[w++] = kept[k];
            kept.resize(w);
        }
        // Fuse, then the prior.
        items.clear();
        for (const int64_t i : kept) {
            const Component& c = comps[static_cast<size_t>(i)];
            items.push_back(MergeItem{c.box, c.area, {i}});
        }
        merge_boxes(items);
        if (prior.is_single(cls) && items.size() > 1) {
            size_t best = 0;
            for (size_t k = 1; k < items.size(); ++k)
                if (items[k].mask_area > items[best].mask_area) best = k;
            MergeItem keep = std::move(items[best]);
            items.clear();
            items.push_back(std::move(keep));
        }
        if (items.empty()) result.dropped_classes.push_back(cls);

        for (const MergeItem& item : items) {
            RegionPrompt rp;
            rp.class_id = cls;
            rp.tight = item.box;
            rp.area = item.mask_area;
            double per = 0.0;
            for (const int64_t i : item.members) per += perimeter[static_cast<size_t>(i)];
            rp.ipq = isoperimetric_quotient(static_cast<double>(item.mask_area), per);
            const int64_t mx = opt.box_margin >= 0 ? opt.box_margin : std::min<int64_t>(10, item.box.width() / 10);
            const int64_t my = opt.box_margin >= 0 ? opt.box_margin : std::min<int64_t>(10, item.box.height() / 10);
            rp.box = Box{std::max<int64_t>(0, item.box.x0 - mx), std::max<int64_t>(0, item.box.y0 - my),
                         std::min<int64_t>(width - 1, item.box.x1 + mx), std::min<int64_t>(height - 1, item.box.y1 + my)};
            const auto id = static_cast<int32_t>(result.regions.size() + 1);
            for (const int64_t i : item.members)
                for_runs(i, [&](int64_t y, int64_t x0, int64_t x1) { std::fill(regions_out + y * width + x0, regions_out + y * width + x1 + 1, id); });

            // Positive point: EDT of M on its box grown by one (outside the image counts as outside M).
            {
                const Box& b = item.box;
                const int64_t bw = b.width() + 2, bh = b.height() + 2;
                scratch.mask.assign(static_cast<size_t>(bw * bh), 0);
                scratch.dist.resize(static_cast<size_t>(bw * bh));
                for (const int64_t i : item.members)
                    for_runs(i, [&](int64_t y, int64_t x0, int64_t x1) {
                        uint8_t* row = scratch.mask.data() + (y - b.y0 + 1) * bw;
                        std::fill(row + (x0 - b.x0 + 1), row + (x1 - b.x0 + 2), uint8_t(1));
                    });
                float value = 0.0f;
                const int64_t best = argmax_distance(scratch.mask.data(), bh, bw, scratch.dist.data(), scratch.edt, value);
                rp.pos_y = b.y0 - 1 + best / bw;
                rp.pos_x = b.x0 - 1 + best % bw;
            }
            // Negative point: distance to M over the box grown by ring_radius, M's sites confined to
            // the columns of its tight box, over pixels not of class c. Rows come top to bottom and
            // the scan stops at the first pixel at distance exactly ring_radius (nothing can beat it).
            {
                const Box& b = item.box;
                const Box g = b.grown(radius, height, width);
                const int64_t gw = g.width(), gh = g.height(), bw = b.width();
                scratch.mask.assign(static_cast<size_t>(bw * gh), 0);
                for (const int64_t i : item.members)
                    for_runs(i, [&](int64_t y, int64_t x0, int64_t x1) {
                        uint8_t* row = scratch.mask.data() + (y - g.y0) * bw;
                        std::fill(row + (x0 - b.x0), row + (x1 - b.x0 + 1), uint8_t(1));
                    });
                const auto limit = static_cast<float>(r2);
                float best = 0.0f;
                squared_distance_to_band_sites(
                    scratch.mask.data(), gh, b.x0 - g.x0, bw, gw, scratch.column, scratch.edt,
                    [&](int64_t y, const float* d) {
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
                    });
            }
            result.regions.push_back(rp);
        }
        begin = end;
    }
}

}  // namespace samedenhancer
