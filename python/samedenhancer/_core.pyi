"""Type stubs of the C++ extension samedenhancer._core (checked by tests/test_core_stub.py)."""

import numpy as np
import numpy.typing as npt

__version__: str

def connected_components(
    mask: npt.NDArray[np.generic], connectivity: int = 8
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float64]]: ...
def distance_transform(mask: npt.NDArray[np.generic], spacing: list[float] = ...) -> npt.NDArray[np.float32]: ...
def mine_prompts(
    coarse: npt.NDArray[np.generic],
    ring_radius: int,
    box_margin: int,
    min_area: int,
    min_fraction: float,
    ipq_filter: bool,
    default_single: bool,
    single: list[int],
    multi: list[int],
) -> tuple[
    npt.NDArray[np.int32],
    npt.NDArray[np.int32],
    npt.NDArray[np.int32],
    npt.NDArray[np.int32],
    npt.NDArray[np.int32],
    npt.NDArray[np.bool_],
    npt.NDArray[np.int64],
    npt.NDArray[np.float32],
    npt.NDArray[np.int32],
    npt.NDArray[np.int32],
    npt.NDArray[np.int32],
]: ...
def overlap(pred: npt.NDArray[np.generic], truth: npt.NDArray[np.generic]) -> tuple[int, int, int]: ...
def surface_metrics(
    pred: npt.NDArray[np.generic], truth: npt.NDArray[np.generic], spacing: list[float]
) -> tuple[float, float]: ...
