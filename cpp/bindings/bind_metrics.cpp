// Bindings of metrics.hpp: validate, then release the GIL for the C++.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "common.hpp"
#include "samedenhancer/metrics.hpp"

namespace py = pybind11;
using namespace samedenhancer;
using samedenhancer::bindings::check_array;
using samedenhancer::bindings::check_spacing;
using samedenhancer::bindings::shape_of;

namespace {

void check_pair(const py::array& a, const py::array& b) {
    check_array(a, "pred");
    check_array(b, "truth");
    for (const auto* arr : {&a, &b})
        if (arr->itemsize() != 1 || (arr->dtype().kind() != 'u' && arr->dtype().kind() != 'b'))
            fail("pred/truth", "dtype bool or uint8", "dtype " + std::string(py::str(arr->dtype())));
    if (shape_of(a) != shape_of(b)) fail("truth", "the shape of pred " + bindings::shape_str(a), bindings::shape_str(b));
}

py::tuple overlap_py(const py::array& a, const py::array& b) {
    check_pair(a, b);
    Overlap o;
    {
        py::gil_scoped_release release;
        o = overlap(static_cast<const uint8_t*>(a.data()), static_cast<const uint8_t*>(b.data()), a.size());
    }
    return py::make_tuple(o.both, o.a, o.b);
}

py::tuple surface_metrics_py(const py::array& a, const py::array& b, std::vector<double> spacing) {
    check_pair(a, b);
    const std::vector<int64_t> shape = shape_of(a);
    spacing = check_spacing(std::move(spacing), a);
    SurfaceMetrics s;
    {
        py::gil_scoped_release release;
        s = surface_metrics(static_cast<const uint8_t*>(a.data()), static_cast<const uint8_t*>(b.data()),
                            static_cast<int>(shape.size()), shape.data(), spacing.data());
    }
    return py::make_tuple(s.hd95, s.assd);
}

}  // namespace

void bind_metrics(py::module_& m) {
    m.def("overlap", &overlap_py, py::arg("pred"), py::arg("truth"),
          "(|pred & truth|, |pred|, |truth|) of two C-contiguous uint8/bool masks of one shape. Releases the GIL.");
    m.def("surface_metrics", &surface_metrics_py, py::arg("pred"), py::arg("truth"), py::arg("spacing"),
          "(HD95, ASSD) of two C-contiguous n-D uint8/bool masks, spacing one value per axis (empty: 1) as "
          "distance_transform takes it, MedPy conventions; (0, 0) when both are empty, (nan, nan) when one is. "
          "Releases the GIL.");
}
