// Binding of prompts.hpp: mine_prompts and its named result, MinedPrompts. Arguments are validated
// and the regions map allocated first; the GIL is released around the C++ work; the per-region
// arrays (their length is known only then) are packed afterwards.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "samedenhancer/prompts.hpp"

namespace py = pybind11;
using namespace samedenhancer;
using samedenhancer::bindings::check_image;
using samedenhancer::bindings::dispatch;
using samedenhancer::bindings::kLabelTypes;

namespace {

// What mine_prompts returns: one row per merged region (R of them), all classes together.
struct MinedPrompts {
    py::array_t<int32_t> class_ids, boxes, tight_boxes, points, point_labels;
    py::array_t<bool> has_negative;
    py::array_t<int64_t> areas;
    py::array_t<float> ipq;
    py::array_t<int32_t> regions, classes, dropped_classes;
};

// Class ids are reported as int32: refuses a label map holding a negative label or one above it
// (classes are ascending, so the first and last tell).
void check_classes(const std::vector<int64_t>& classes) {
    constexpr int64_t top = std::numeric_limits<int32_t>::max();
    if (classes.empty()) return;
    const int64_t bad = classes.front() < 0 ? classes.front() : classes.back();
    if (bad < 0 || bad > top)
        fail("coarse", "labels in [0, " + std::to_string(top) + "] (class ids are int32)",
             "a label of " + std::to_string(bad));
}

// `values` as a new int32 array (already checked to fit).
py::array_t<int32_t> int32_array(const std::vector<int64_t>& values) {
    py::array_t<int32_t> out(static_cast<py::ssize_t>(values.size()));
    int32_t* o = out.mutable_data();
    for (size_t i = 0; i < values.size(); ++i) o[i] = static_cast<int32_t>(values[i]);
    return out;
}

// Packs the regions of `res` into numpy arrays; `regions` is the map the C++ filled in place.
MinedPrompts pack(const PromptResult& res, py::array_t<int32_t> regions) {
    const auto n = static_cast<py::ssize_t>(res.regions.size());
    MinedPrompts out{py::array_t<int32_t>(n),
                     py::array_t<int32_t>({n, py::ssize_t(4)}),
                     py::array_t<int32_t>({n, py::ssize_t(4)}),
                     py::array_t<int32_t>({n, py::ssize_t(2), py::ssize_t(2)}),
                     py::array_t<int32_t>({n, py::ssize_t(2)}),
                     py::array_t<bool>(n),
                     py::array_t<int64_t>(n),
                     py::array_t<float>(n),
                     std::move(regions),
                     int32_array(res.classes),
                     int32_array(res.dropped_classes)};
    auto ci = out.class_ids.mutable_unchecked<1>();
    auto bx = out.boxes.mutable_unchecked<2>();
    auto tb = out.tight_boxes.mutable_unchecked<2>();
    auto pt = out.points.mutable_unchecked<3>();
    auto pl = out.point_labels.mutable_unchecked<2>();
    auto hn = out.has_negative.mutable_unchecked<1>();
    auto ar = out.areas.mutable_unchecked<1>();
    auto iq = out.ipq.mutable_unchecked<1>();
    for (py::ssize_t i = 0; i < n; ++i) {
        const RegionPrompt& r = res.regions[static_cast<size_t>(i)];
        ci(i) = static_cast<int32_t>(r.class_id);
        const Box* src[2] = {&r.box, &r.tight};
        for (int k = 0; k < 2; ++k) {
            auto& dst = k == 0 ? bx : tb;
            dst(i, 0) = static_cast<int32_t>(src[k]->x0);
            dst(i, 1) = static_cast<int32_t>(src[k]->y0);
            dst(i, 2) = static_cast<int32_t>(src[k]->x1);
            dst(i, 3) = static_cast<int32_t>(src[k]->y1);
        }
        pt(i, 0, 0) = static_cast<int32_t>(r.pos_x);
        pt(i, 0, 1) = static_cast<int32_t>(r.pos_y);
        pt(i, 1, 0) = static_cast<int32_t>(r.has_negative ? r.neg_x : 0);
        pt(i, 1, 1) = static_cast<int32_t>(r.has_negative ? r.neg_y : 0);
        pl(i, 0) = 1;
        pl(i, 1) = r.has_negative ? 0 : -1;
        hn(i) = r.has_negative;
        ar(i) = r.area;
        iq(i) = static_cast<float>(r.ipq);
    }
    return out;
}

MinedPrompts mine_prompts_py(const py::array& label_map, int64_t ring_radius, std::optional<int64_t> box_margin,
                             int64_t min_area, double min_fraction, bool ipq_filter, bool default_single,
                             std::vector<int64_t> single, std::vector<int64_t> multi) {
    check_image(label_map, "coarse");
    if (box_margin && *box_margin < 0)
        fail("box_margin", "an integer >= 0, or None for min(10, side / 10) per axis", std::to_string(*box_margin));
    PromptOptions opt;
    opt.ring_radius = ring_radius;
    opt.box_margin = box_margin.value_or(-1);
    opt.min_area = min_area;
    opt.min_fraction = min_fraction;
    opt.ipq_filter = ipq_filter;
    check_prompt_options(opt);
    const Prior prior{default_single, std::move(single), std::move(multi)};
    const int64_t h = label_map.shape(0), w = label_map.shape(1);
    py::array_t<int32_t> regions({h, w});
    int32_t* reg = regions.mutable_data();
    PromptResult res;
    dispatch(label_map, "coarse", kLabelTypes, [&](const auto* img) {
        py::gil_scoped_release release;
        PromptScratch scratch;
        mine_prompts(img, h, w, opt, prior, reg, res, scratch);
    });
    check_classes(res.classes);
    return pack(res, std::move(regions));
}

}  // namespace

void bind_prompts(py::module_& m) {
    py::class_<MinedPrompts> cls(m, "MinedPrompts",
                                 "The result of mine_prompts: one row per merged region (R), all classes together, "
                                 "ordered by class then by first pixel. Read-only attributes, new numpy arrays.");
    cls.def_readonly("class_ids", &MinedPrompts::class_ids, "int32 (R,): the class of each region.");
    cls.def_readonly("boxes", &MinedPrompts::boxes, "int32 (R, 4): XYXY inclusive, the tight box with its margin.");
    cls.def_readonly("tight_boxes", &MinedPrompts::tight_boxes, "int32 (R, 4): XYXY inclusive tight boxes.");
    cls.def_readonly("points", &MinedPrompts::points,
             "int32 (R, 2, 2): (x, y) of the positive point, then of the negative one ((0, 0) where none).");
    cls.def_readonly("point_labels", &MinedPrompts::point_labels,
                     "int32 (R, 2): (1, 0), or (1, -1) without a negative.");
    cls.def_readonly("has_negative", &MinedPrompts::has_negative, "bool (R,): whether the ring held a negative point.");
    cls.def_readonly("areas", &MinedPrompts::areas, "int64 (R,): pixels of each region.");
    cls.def_readonly("ipq", &MinedPrompts::ipq, "float32 (R,): isoperimetric quotient, clamped to <= 1.");
    cls.def_readonly("regions", &MinedPrompts::regions, "int32 (H, W): i + 1 on the pixels of region i, 0 elsewhere.");
    cls.def_readonly("classes", &MinedPrompts::classes, "int32: every nonzero class present, ascending.");
    cls.def_readonly("dropped_classes", &MinedPrompts::dropped_classes,
             "int32: classes present without any surviving region, ascending.");
    cls.def("__len__", [](const MinedPrompts& p) { return p.class_ids.shape(0); });
    cls.def("__repr__", [](const MinedPrompts& p) {
        return "MinedPrompts(" + std::to_string(p.class_ids.shape(0)) + " regions, classes " +
               std::string(py::repr(p.classes.attr("tolist")())) + ", dropped " +
               std::string(py::repr(p.dropped_classes.attr("tolist")())) + ")";
    });
    m.def("mine_prompts", &mine_prompts_py, py::arg("coarse"), py::arg("ring_radius"), py::arg("box_margin"),
          py::arg("min_area"), py::arg("min_fraction"), py::arg("ipq_filter"), py::arg("default_single"),
          py::arg("single"), py::arg("multi"),
          "MSFF and prompt mining for every class of a C-contiguous 2-D label map (labels in [0, 2**31 - 1], at "
          "most 2**31 - 1 pixels); box_margin None: min(10, side / 10) per axis. Returns a MinedPrompts. "
          "Releases the GIL.");
}
