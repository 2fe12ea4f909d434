// Bindings of connected_components.hpp, perimeter.hpp and edt.hpp. Each function validates and
// converts its arguments, allocates its outputs, then releases the GIL for the C++.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "common.hpp"
#include "samedenhancer/connected_components.hpp"
#include "samedenhancer/edt.hpp"
#include "samedenhancer/perimeter.hpp"

namespace py = pybind11;
using namespace samedenhancer;
using samedenhancer::bindings::check_array;
using samedenhancer::bindings::check_image;
using samedenhancer::bindings::kLabelTypes;
using samedenhancer::bindings::check_spacing;
using samedenhancer::bindings::shape_of;
using samedenhancer::bindings::dispatch;

namespace {

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

}  // namespace

void bind_core(py::module_& m) {
    m.def("connected_components", &connected_components_py, py::arg("mask"), py::arg("connectivity") = 8,
          "Labels of a C-contiguous 2-D label map (at most 2**31 - 1 pixels) and per-component (areas, boxes "
          "XYXY, perimeters); components of different nonzero values never merge. Releases the GIL.");
    m.def("distance_transform", &distance_transform_py, py::arg("mask"), py::arg("spacing") = std::vector<double>{},
          "Exact Euclidean distance of each nonzero voxel of a C-contiguous n-D array to the nearest zero voxel "
          "(float32), spacing one value per axis (empty: 1), each >= 1e-18 with the image's diagonal "
          "sqrt(sum((spacing * axis length)^2)) <= 1e18. Releases the GIL.");
}
