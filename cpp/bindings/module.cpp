// pybind11 entry point of samedenhancer._core. Each bind_*.cpp registers one header's functions.
#include <pybind11/pybind11.h>

#define SAMEDENHANCER_STRINGIFY(x) #x
#define SAMEDENHANCER_MACRO_STRINGIFY(x) SAMEDENHANCER_STRINGIFY(x)

PYBIND11_MODULE(_core, m) {
    m.doc() = "samedenhancer C++ core: components, EDT, MSFF, prompt mining, metrics";
    m.attr("__version__") = SAMEDENHANCER_MACRO_STRINGIFY(VERSION_INFO);
}
