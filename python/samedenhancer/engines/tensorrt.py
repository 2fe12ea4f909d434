"""Native TensorRT: build serialized engines from the exported ONNX graphs and run ``.engine`` files.

Needs the ``tensorrt`` Python package, ``cuda-python`` (device memory and streams, so that no
torch is needed at run time) and a CUDA GPU; ``tensorrt_missing()`` says which of them is absent.
The decoder engine has one optimisation profile over the prompt axis and the points axis.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .ort import TensorInfo

#: Prompt-batch and points-per-prompt ranges of the decoder's optimisation profile (min, opt, max):
#: the exporter builds native engines with them, ONNX Runtime's TensorRT provider is given them.
TRT_PROMPTS = (1, 8, 64)
TRT_POINTS = (1, 4, 16)


def _cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart
    return cudart


def tensorrt_missing() -> str:
    """'' when TensorRT engines can be built and run here, else what is missing (for error messages)."""
    missing = []
    if importlib.util.find_spec("tensorrt") is None:
        missing.append("the tensorrt package")
    try:
        cudart = _cudart()
    except ImportError:
        missing.append("cuda-python (cuda.bindings.runtime)")
    else:
        err, count = cudart.cudaGetDeviceCount()
        if int(err) != 0 or count == 0:
            missing.append("a CUDA GPU")
    return ", ".join(missing)


def _require() -> None:
    missing = tensorrt_missing()
    if missing:
        raise RuntimeError(f"TensorRT engines need tensorrt, cuda-python and a CUDA GPU; missing: {missing}")


def _check(result, what: str):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA {what} failed with error {err}")
    return rest[0] if len(rest) == 1 else rest


def build_engine(onnx_path: Path, engine_path: Path, *, half: bool = False, profiles: dict | None = None) -> Path:
    """Parse ``onnx_path`` and write a serialized TensorRT engine to ``engine_path``.

    ``profiles`` maps dynamic input names to ``[min, opt, max]`` shapes (one optimisation profile).
    ``half=True`` enables fp16 kernels and raises if the GPU has no fast fp16.
    """
    _require()
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if half:
        if not builder.platform_has_fast_fp16:
            raise RuntimeError("half=True: this GPU has no fast fp16 (TensorRT platform_has_fast_fp16 is False)")
        config.set_flag(trt.BuilderFlag.FP16)
    if profiles:
        profile = builder.create_optimization_profile()
        for name, (low, opt, high) in profiles.items():
            profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    Path(engine_path).write_bytes(bytes(serialized))
    return Path(engine_path)


class TensorRTEngine:
    """Run a serialized TensorRT engine (``.engine``) with the same ``run(feeds)`` interface as
    ``OrtEngine``: numpy in, numpy out, device buffers reused between calls and grown on demand."""

    on_gpu = True
    providers = ("TensorRT",)

    def __init__(self, path):
        _require()
        import tensorrt as trt

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"TensorRT engine {self.path} not found")
        self._cudart = _cudart()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{self.path} is not a TensorRT engine for this TensorRT version / GPU")
        self.context = self.engine.create_execution_context()
        inputs, outputs = [], []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            info = TensorInfo(name, tuple(self.engine.get_tensor_shape(name)), np.dtype(trt.nptype(self.engine.get_tensor_dtype(name))))
            (inputs if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(info)
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        #: Largest prompt batch the optimisation profile allows (``None``: static graph).
        self.max_prompts = None
        if any(i.name == "point_coords" for i in self.inputs):
            self.max_prompts = int(self.engine.get_tensor_profile_shape("point_coords", 0)[2][0])
        self._stream = _check(self._cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._buffers: dict[str, tuple[int, int]] = {}

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(self._cudart.cudaFree(ptr), "cudaFree")
            ptr = _check(self._cudart.cudaMalloc(max(nbytes, 1)), "cudaMalloc")
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def run(self, feeds: dict, *, keep_on_device: bool = False) -> list:
        if keep_on_device:
            raise ValueError("TensorRTEngine returns host arrays only (keep_on_device=True is for OrtEngine)")
        cudart = self._cudart
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        hold = []
        for info in self.inputs:
            if info.name not in feeds:
                raise ValueError(f"{self.path.name} needs inputs {[i.name for i in self.inputs]}; missing {info.name!r}")
            array = np.ascontiguousarray(feeds[info.name], dtype=info.dtype)
            hold.append(array)
            self.context.set_input_shape(info.name, array.shape)
            ptr = self._buffer(info.name, array.nbytes)
            _check(cudart.cudaMemcpyAsync(ptr, array.ctypes.data, array.nbytes, h2d, self._stream), "cudaMemcpyAsync")
            self.context.set_tensor_address(info.name, ptr)
        results = []
        for info in self.outputs:
            shape = tuple(self.context.get_tensor_shape(info.name))
            array = np.empty(shape, dtype=info.dtype)
            self.context.set_tensor_address(info.name, self._buffer(info.name, array.nbytes))
            results.append(array)
        if not self.context.execute_async_v3(self._stream):
            raise RuntimeError(f"TensorRT execution of {self.path.name} failed")
        for info, array in zip(self.outputs, results):
            ptr, _ = self._buffers[info.name]
            _check(cudart.cudaMemcpyAsync(array.ctypes.data, ptr, array.nbytes, d2h, self._stream), "cudaMemcpyAsync")
        _check(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return results

    def __del__(self):
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        for ptr, _ in getattr(self, "_buffers", {}).values():
            cudart.cudaFree(ptr)
        if getattr(self, "_stream", None) is not None:
            cudart.cudaStreamDestroy(self._stream)
