"""ONNX Runtime engine: one ``InferenceSession`` with explicit execution providers, latency-oriented
session options, tensor metadata cached at construction, and IO binding when it runs on a GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..validation import integer

#: Short provider names accepted by ``providers=`` and what they expand to (explicit fallbacks).
PROVIDER_ALIASES = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
#: Prompts per decoder call on the CPU (see ``OrtEngine.max_prompts``).
CPU_MAX_PROMPTS = 8
_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
}


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape (ints, or strings for dynamic axes) and numpy dtype of a graph input/output."""

    name: str
    shape: tuple
    dtype: np.dtype


def available_providers() -> tuple[str, ...]:
    import onnxruntime

    return tuple(onnxruntime.get_available_providers())


def resolve_providers(providers=None) -> list:
    """Expand ``providers`` into an ONNX Runtime provider list, checking each is available.

    ``None`` means CPU only. Entries are ONNX Runtime names (``"CUDAExecutionProvider"``),
    ``(name, options)`` pairs, or the aliases ``"cpu"``, ``"cuda"`` and ``"tensorrt"`` (which add
    the CUDA and CPU fallbacks explicitly). An unavailable provider raises ``ValueError``.
    """
    if providers is None:
        providers = ["cpu"]
    elif isinstance(providers, str) or (isinstance(providers, tuple) and len(providers) == 2 and isinstance(providers[1], dict)):
        providers = [providers]
    elif isinstance(providers, (list, tuple)):
        providers = list(providers)
    if not isinstance(providers, list) or not providers:
        raise TypeError(f"providers must be None, a provider name or a non-empty list of them, got {providers!r}")
    available = available_providers()
    resolved: list = []
    for entry in providers:
        if isinstance(entry, str) and entry.lower() in PROVIDER_ALIASES:
            names = PROVIDER_ALIASES[entry.lower()]
        elif isinstance(entry, str):
            names = (entry,)
        elif isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], dict):
            names = (entry,)
        else:
            raise TypeError(f"providers entries must be names or (name, options) pairs, got {entry!r}")
        for name in names:
            key = name[0] if isinstance(name, tuple) else name
            if key not in available:
                raise ValueError(f"execution provider {key!r} is not available in this onnxruntime build (available: {available})")
            if key not in [r[0] if isinstance(r, tuple) else r for r in resolved]:
                resolved.append(name)
    return resolved


class OrtEngine:
    """Run one ONNX graph with ONNX Runtime.

    Parameters
    ----------
    path : path
        The ``.onnx`` file.
    providers : see ``resolve_providers``
        Execution providers in priority order (default: CPU only).
    intra_op_threads : int, optional
        Threads of one operator (default: ONNX Runtime's choice, one per physical core).
    provider_options : dict, optional
        Extra options per provider name (e.g. the TensorRT EP's profile shapes), merged into the
        resolved providers.

    Attributes
    ----------
    inputs, outputs : tuple of TensorInfo
        Cached at construction.
    providers : tuple of str
        The providers the session actually uses.
    on_gpu : bool
        Whether the first provider is a GPU one (then ``run`` uses IO binding and can keep outputs
        on the device).
    """

    def __init__(self, path, providers=None, *, intra_op_threads: int | None = None, provider_options: dict | None = None):
        import onnxruntime

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} not found")
        resolved = resolve_providers(providers)
        if provider_options:
            merged = []
            for entry in resolved:
                name, options = (entry if isinstance(entry, tuple) else (entry, {}))
                extra = provider_options.get(name, {})
                merged.append((name, {**extra, **options}) if (extra or options) else name)
            resolved = merged
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if intra_op_threads is not None:
            options.intra_op_num_threads = integer(intra_op_threads, "intra_op_threads (0 = one per core)", 0)
        self.path = path
        self.session = onnxruntime.InferenceSession(os.fspath(path), sess_options=options, providers=resolved)
        self.providers = tuple(self.session.get_providers())
        self.inputs = tuple(TensorInfo(i.name, tuple(i.shape), _DTYPES.get(i.type, np.dtype(np.float32))) for i in self.session.get_inputs())
        self.outputs = tuple(TensorInfo(o.name, tuple(o.shape), _DTYPES.get(o.type, np.dtype(np.float32))) for o in self.session.get_outputs())
        self._input_names = tuple(i.name for i in self.inputs)
        self._output_names = [o.name for o in self.outputs]
        self.on_gpu = self.providers[0] in _GPU_PROVIDERS
        #: Largest prompt batch per call (``None``: unlimited; TensorRT engines have a profile). On
        #: the CPU a call's memory grows by ~30 MB per LiteMedSAM prompt (64 prompts: 2.1 GB above
        #: the loaded model, 8: 0.5 GB) while batching saves no time there, so CPU sessions decode
        #: ``CPU_MAX_PROMPTS`` prompts per call.
        self.max_prompts = None if self.on_gpu else CPU_MAX_PROMPTS

    def run(self, feeds: dict, *, keep_on_device: bool = False) -> list:
        """Run the graph on ``feeds`` (name -> numpy array, or ``OrtValue`` already on the device).

        Returns the outputs in graph order as numpy arrays, or as device ``OrtValue`` objects with
        ``keep_on_device=True`` on a GPU (to feed another GPU graph without a host round trip).
        """
        missing = [name for name in self._input_names if name not in feeds]
        if missing:
            raise ValueError(f"{self.path.name} needs inputs {list(self._input_names)}; missing {missing}")
        if not self.on_gpu:
            return self.session.run(self._output_names, {name: feeds[name] for name in self._input_names})
        import onnxruntime

        binding = self.session.io_binding()
        for info in self.inputs:
            value = feeds[info.name]
            if isinstance(value, onnxruntime.OrtValue):
                binding.bind_ortvalue_input(info.name, value)
            else:
                binding.bind_cpu_input(info.name, np.ascontiguousarray(value, dtype=info.dtype))
        for name in self._output_names:
            binding.bind_output(name, "cuda" if keep_on_device else "cpu")
        binding.synchronize_inputs()
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        if keep_on_device:
            return list(binding.get_outputs())
        return binding.copy_outputs_to_cpu()
