// pybind11 entry point of samedenhancer._core. Each bind_*.cpp registers one area's functions.
#include <pybind11/pybind11.h>

#define SAMEDENHANCER_STRINGIFY(x) #x
#define SAMEDENHANCER_MACRO_STRINGIFY(x) SAMEDENHANCER_STRINGIFY(x)

namespace py = pybind11;

void bind_core(py::module_& m);
void bind_metrics(py::module_& m);
void bind_prompts(py::module_& m);

PYBIND11_MODULE(_core, m) {
    m.doc() = "samedenhancer C++ core: components, EDT, MSFF, prompt mining, metrics";
    m.attr("__version__") = SAMEDENHANCER_MACRO_STRINGIFY(VERSION_INFO);
    bind_core(m);
    bind_metrics(m);
    bind_prompts(m);
}
