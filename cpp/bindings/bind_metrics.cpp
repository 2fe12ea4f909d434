// Bindings of metrics.hpp: validate, then release the GIL for the C++.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "common.hpp"
#include "samedenhancer/metrics.hpp"

namespace py = pybind11;
using namespace samedenhancer;
using samedenhancer::bindings::check_image;

namespace {

void check_pair(const py::array& a, const py::array& b) {
    check_image(a, "pred");
    check_image(b, "truth");
    for (const auto* arr : {&a, &b})
        if (arr->itemsize() != 1 || (arr->dtype().kind() != 'u' && arr->dtype().kind() != 'b'))
            fail("pred/truth", "dtype bool or uint8", "dtype " + std::string(py::str(arr->dtype())));
    if (a.shape(0) != b.shape(0) || a.shape(1) != b.shape(1))
        fail("truth", "the shape of pred " + bindings::shape_str(a), bindings::shape_str(b));
}

py::tuple overlap_py(const py::array& a, const py::array& b) {
    check_pair(a, b);
    Overlap o;
    {
        py::gil_scoped_release release;
        o = overlap(static_cast<const uint8_t*>(a.data()), static_cast<const uint8_t*>(b.data()), a.shape(0) * a.shape(1));
    }
    return py::make_tuple(o.both, o.a, o.b);
}

py::tuple surface_metrics_py(const py::array& a, const py::array& b, double sy, double sx) {
    check_pair(a, b);
    if (!(sy > 0.0) || !(sx > 0.0)) fail("spacing", "positive values", std::to_string(sy) + ", " + std::to_string(sx));
    SurfaceMetrics s;
    {
        py::gil_scoped_release release;
        s = surface_metrics(static_cast<const uint8_t*>(a.data()), static_cast<const uint8_t*>(b.data()), a.shape(0),
                            a.shape(1), sy, sx);
    }
    return py::make_tuple(s.hd95, s.assd);
}

}  // namespace

void bind_metrics(py::module_& m) {
    m.def("overlap", &overlap_py, py::arg("pred"), py::arg("truth"),
          "(|pred & truth|, |pred|, |truth|) of two uint8/bool masks. Releases the GIL.");
    m.def("surface_metrics", &surface_metrics_py, py::arg("pred"), py::arg("truth"), py::arg("sy"), py::arg("sx"),
          "(HD95, ASSD) of two non-empty uint8/bool masks, MedPy conventions. Releases the GIL.");
}
