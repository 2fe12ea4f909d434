// Bindings of connected_components.hpp, perimeter.hpp, edt.hpp and prompts.hpp. Each function
// validates and converts its arguments, allocates its outputs, then releases the GIL for the C++.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "common.hpp"
#include "samedenhancer/connected_components.hpp"
#include "samedenhancer/edt.hpp"
#include "samedenhancer/perimeter.hpp"
#include "samedenhancer/prompts.hpp"

namespace py = pybind11;
using namespace samedenhancer;
using samedenhancer::bindings::check_array;
using samedenhancer::bindings::check_image;
using samedenhancer::bindings::check_spacing;
using samedenhancer::bindings::shape_of;
using samedenhancer::bindings::dispatch;

namespace {

constexpr const char* kLabelTypes = "dtype bool, uint8, uint16, int32 or int64";

py::tuple connected_components_py(const py::array& mask, int connectivity) {
    check_image(mask, "mask");
    if (connectivity != 4 && connectivity != 8) fail("connectivity", "4 or 8", std::to_string(connectivity));
    const int64_t h = mask.shape(0), w = mask.shape(1);
    py::array_t<int32_t> labels({h, w});
    int32_t* out = labels.mutable_data();
    RunSet runs;
    std::vector<Component> comps;
    std::vector<double> perimeters;
    dispatch(mask, "mask", kLabelTypes, [&](const auto* img) {
        py::gil_scoped_release release;
        find_runs(img, h, w, runs);
        comps = label_runs(runs, h, connectivity);
        write_labels(runs, h, w, out);
        perimeters.resize(comps.size());
        for (size_t i = 0; i < comps.size(); ++i) {
            const auto lab = static_cast<int32_t>(i + 1);
            const auto fr = static_cast<size_t>(comps[i].first_run);
            perimeters[i] = outer_perimeter(runs.y[fr], runs.x0[fr], h, w,
                                            [&](int64_t y, int64_t x) { return out[y * w + x] == lab; });
        }
    });
    const auto n = static_cast<py::ssize_t>(comps.size());
    py::array_t<int64_t> areas(n);
    py::array_t<int32_t> boxes({n, py::ssize_t(4)});
    py::array_t<double> per(n);
    auto a = areas.mutable_unchecked<1>();
    auto b = boxes.mutable_unchecked<2>();
    auto p = per.mutable_unchecked<1>();
    for (py::ssize_t i = 0; i < n; ++i) {
        const Component& c = comps[static_cast<size_t>(i)];
        a(i) = c.area;
        b(i, 0) = static_cast<int32_t>(c.box.x0);
        b(i, 1) = static_cast<int32_t>(c.box.y0);
        b(i, 2) = static_cast<int32_t>(c.box.x1);
        b(i, 3) = static_cast<int32_t>(c.box.y1);
        p(i) = perimeters[static_cast<size_t>(i)];
    }
    return py::make_tuple(labels, areas, boxes, per);
}

py::array_t<float> distance_transform_py(const py::array& mask, std::vector<double> spacing) {
    check_array(mask, "mask");
    const std::vector<int64_t> shape = shape_of(mask);
    spacing = check_spacing(std::move(spacing), mask);
    py::array_t<float> out(std::vector<py::ssize_t>(shape.begin(), shape.end()));
    float* o = out.mutable_data();
    dispatch(
        mask, "mask", "dtype bool, uint8, uint16, int32, int64, float32 or float64",
        [&](const auto* img) {
            py::gil_scoped_release release;
            EdtScratch scratch;
            euclidean_distance_transform_nd<true>(img, static_cast<int>(shape.size()), shape.data(), spacing.data(),
                                                  o, scratch);
        },
        true);
    return out;
}

py::tuple mine_prompts_py(const py::array& label_map, int64_t ring_radius, int64_t box_margin, int64_t min_area,
                          double min_fraction, bool ipq_filter, bool default_single, std::vector<int64_t> single,
                          std::vector<int64_t> multi) {
    check_image(label_map, "coarse");
    const int64_t h = label_map.shape(0), w = label_map.shape(1);
    PromptOptions opt;
    opt.ring_radius = ring_radius;
    opt.box_margin = box_margin;
    opt.min_area = min_area;
    opt.min_fraction = min_fraction;
    opt.ipq_filter = ipq_filter;
    if (ring_radius < 0) fail("ring_radius", "an integer >= 0", std::to_string(ring_radius));
    Prior prior{default_single, std::move(single), std::move(multi)};
    py::array_t<int32_t> regions({h, w});
    int32_t* reg = regions.mutable_data();
    PromptResult res;
    dispatch(label_map, "coarse", kLabelTypes, [&](const auto* img) {
        py::gil_scoped_release release;
        PromptScratch scratch;
        mine_prompts(img, h, w, opt, prior, reg, res, scratch);
    });
    const auto n = static_cast<py::ssize_t>(res.regions.size());
    py::array_t<int32_t> class_ids(n), boxes({n, py::ssize_t(4)}), tight({n, py::ssize_t(4)}),
        points({n, py::ssize_t(2), py::ssize_t(2)}), point_labels({n, py::ssize_t(2)});
    py::array_t<bool> has_negative(n);
    py::array_t<int64_t> areas(n);
    py::array_t<float> ipq(n);
    auto ci = class_ids.mutable_unchecked<1>();
    auto bx = boxes.mutable_unchecked<2>();
    auto tb = tight.mutable_unchecked<2>();
    auto pt = points.mutable_unchecked<3>();
    auto pl = point_labels.mutable_unchecked<2>();
    auto hn = has_negative.mutable_unchecked<1>();
    auto ar = areas.mutable_unchecked<1>();
    auto iq = ipq.mutable_unchecked<1>();
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
    auto to_array = [](const std::vector<int64_t>& v) {
        py::array_t<int32_t> a(static_cast<py::ssize_t>(v.size()));
        for (size_t i = 0; i < v.size(); ++i) a.mutable_data()[i] = static_cast<int32_t>(v[i]);
        return a;
    };
    return py::make_tuple(class_ids, boxes, tight, points, point_labels, has_negative, areas, ipq, regions,
                          to_array(res.classes), to_array(res.dropped_classes));
}

}  // namespace

void bind_core(py::module_& m) {
    m.def("connected_components", &connected_components_py, py::arg("mask"), py::arg("connectivity") = 8,
          "Labels of a C-contiguous 2-D label map and per-component (areas, boxes XYXY, perimeters); "
          "components of different values never merge. Releases the GIL.");
    m.def("distance_transform", &distance_transform_py, py::arg("mask"), py::arg("spacing") = std::vector<double>{},
          "Exact Euclidean distance of each nonzero voxel of a C-contiguous n-D array to the nearest zero voxel "
          "(float32), spacing one value per axis (empty: 1). Releases the GIL.");
    m.def("mine_prompts", &mine_prompts_py, py::arg("coarse"), py::arg("ring_radius"), py::arg("box_margin"),
          py::arg("min_area"), py::arg("min_fraction"), py::arg("ipq_filter"), py::arg("default_single"),
          py::arg("single"), py::arg("multi"),
          "MSFF and prompt mining for every class of a C-contiguous label map. Returns (class_ids, boxes, "
          "tight_boxes, points, point_labels, has_negative, areas, ipq, regions, classes, dropped_classes). "
          "Releases the GIL.");
}
