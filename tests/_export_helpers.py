"""Exports that trace no model, for the tests of what ``export`` does around the tracing (checking
the output folder, staging, the manifest and its hashes, publishing): the PyTorch tracing (ten
seconds of CPU, and not their subject) is replaced by copies of graphs exported before."""

from __future__ import annotations

import shutil
from pathlib import Path


def trace_by_copying(sources, setattr) -> list[Path]:
    """Make ``samedenhancer.export.export("litemedsam")`` copy the graphs of ``sources`` (export
    folders, used in turn: the first export copies ``sources[0]``, the next ``sources[1]``...)
    instead of building and tracing the model; ``setattr`` is ``monkeypatch.setattr`` (or the
    builtin, in a process of its own). Returns the list of folders graphs were written into."""
    import samedenhancer.export as export_module
    from samedenhancer.export import torch_models

    sources = [Path(source) for source in sources]
    written: list[Path] = []

    def copy_graphs(family, torch_model, doc, directory):
        for name in ("encoder.onnx", "decoder.onnx"):
            shutil.copyfile(sources[len(written) % len(sources)] / name, directory / name)
        written.append(directory)

    setattr(torch_models, "build_litemedsam", lambda checkpoint: (None, None))
    setattr(export_module, "_export_graphs", copy_graphs)
    return written
