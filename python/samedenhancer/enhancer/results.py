"""What the Enhancer returns: the refined label map with, per region, how it was obtained; the
encoded half of an image (:class:`Encoded`) that :meth:`Enhancer.refine` finishes; and the one rule
for how a refined mask is written back (:class:`MaskEncoding`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import Prompts


@dataclass(frozen=True)
class Timings:
    """Seconds spent per stage of one image or frame (0 for a stage that did not run)."""

    mine: float = 0.0
    preprocess: float = 0.0
    encode: float = 0.0
    decode: float = 0.0
    paste: float = 0.0

    @property
    def total(self) -> float:
        return self.mine + self.preprocess + self.encode + self.decode + self.paste


@dataclass(frozen=True)
class MaskEncoding:
    """How a refined label map is handed back: in the encoding the coarse mask came in.

    The one place that decides it, so that the Python API, the stream, pseudo-labels, the review
    page and every command write the same thing. A label map (bool, or an integer dtype without a
    threshold) keeps its dtype and its labels: a 0/1 map stays 0/1, a 0/255 mask stays 0/255, bool
    stays bool. A soft map, thresholded (float, or uint8 with a threshold), becomes a binary
    uint8 mask of 0 and 255: a 0/255 mask given with a threshold stays 0/255, and a probability
    map comes back visible as an image.

    Attributes
    ----------
    dtype : numpy.dtype
        The output's dtype.
    soft : bool
        The coarse mask was a soft map: foreground is written as 255.

    Examples
    --------
    >>> import numpy as np
    >>> encoding = MaskEncoding.of(np.dtype(np.uint8), threshold=127)
    >>> encoding.apply(np.array([[0, 1]], np.uint8)).tolist()
    [[0, 255]]
    >>> MaskEncoding.of(np.dtype(np.uint16), None).apply(np.array([[0, 7]], np.uint16)).tolist()
    [[0, 7]]
    """

    dtype: np.dtype
    soft: bool

    @classmethod
    def of(cls, dtype: np.dtype, threshold: float | None) -> "MaskEncoding":
        """The encoding of a coarse mask of ``dtype`` read with ``threshold`` (as
        :func:`~samedenhancer.as_label_map` reads it: float maps are always soft, uint8 maps are soft
        when a threshold is given)."""
        dtype = np.dtype(dtype)
        if dtype.kind == "f" or (threshold is not None and dtype == np.uint8):
            return cls(np.dtype(np.uint8), True)
        return cls(dtype, False)

    def apply(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` (the refined label map in the classes of the thresholded coarse map) encoded."""
        if self.soft:
            return np.where(labels > 0, np.uint8(255), np.uint8(0))
        return labels.astype(self.dtype, copy=False)


@dataclass(frozen=True)
class Encoded:
    """An image whose prompts are mined and whose embedding is computed: the first half of
    :meth:`Enhancer.enhance`, finished by :meth:`Enhancer.refine` (the stream runs the halves in
    two threads). The coarse mask is read and thresholded once, here.

    Attributes
    ----------
    prompts : Prompts
        The regions and prompts of the coarse mask (``prompts.label_map``: the thresholded map).
    encoding : MaskEncoding
        How the refined mask is handed back (decided by the coarse mask's dtype and threshold).
    evidence : ndarray or None
        The coarse map's log-odds for soft fusion (float32 H x W); ``None`` when fusion is off or
        the coarse mask holds no probabilities.
    embedding : ImageEmbedding or None
        The encoder's output; ``None`` when no region was mined (no model call).
    timings : Timings
        ``mine``, ``preprocess`` and ``encode`` seconds.
    """

    prompts: Prompts
    encoding: MaskEncoding
    evidence: np.ndarray | None
    embedding: object
    timings: Timings


@dataclass(frozen=True)
class RegionResult:
    """One merged region of the coarse mask and what the model made of it.

    The region's mask is kept inside ``window``, the native-pixel box ``(x0, y0, x1, y1)``
    (inclusive) outside of which the model put no foreground and the coarse region has no pixel
    (the stage-1 mask inside ``stage1_window``), as packed bits;
    ``mask`` and ``stage1_mask`` give them at full size (computed on access: a result with many
    regions of a large image stays small). ``stage1_mask``/``stage1_iou`` are set by the policies
    that decode points first ("points", "hierarchical"); ``mask``/``iou`` are the final decode of
    the region (after soft fusion when it applied). ``box`` is the box of the final decode and
    ``rounds`` the number of decoder calls the region's box took (1 without box iteration).
    """

    class_id: int
    box: np.ndarray
    points: np.ndarray
    point_labels: np.ndarray
    iou: float
    stage1_iou: float
    agreement: float
    fell_back: bool
    rounds: int
    window: tuple
    shape: tuple
    window_bits: np.ndarray
    stage1_window: tuple | None = None
    stage1_window_bits: np.ndarray | None = None

    @staticmethod
    def pack(mask: np.ndarray) -> np.ndarray:
        """A bool window mask as the bits results keep (eight pixels a byte)."""
        return np.packbits(mask, axis=None)

    @staticmethod
    def _unpack(bits: np.ndarray, window: tuple) -> np.ndarray:
        x0, y0, x1, y1 = window
        height, width = y1 - y0 + 1, x1 - x0 + 1
        return np.unpackbits(bits, count=height * width).reshape(height, width).view(bool)

    def _full(self, window: tuple, crop: np.ndarray) -> np.ndarray:
        full = np.zeros(self.shape, bool)
        x0, y0, x1, y1 = window
        full[y0 : y1 + 1, x0 : x1 + 1] = crop
        return full

    @property
    def window_mask(self) -> np.ndarray:
        """The region's refined mask inside ``window``, bool."""
        return self._unpack(self.window_bits, self.window)

    @property
    def mask(self) -> np.ndarray:
        """The region's refined mask, bool H x W."""
        return self._full(self.window, self.window_mask)

    @property
    def stage1_mask(self) -> np.ndarray | None:
        """The stage-1 (points) mask of the point policies, bool H x W, else ``None``."""
        if self.stage1_window_bits is None:
            return None
        return self._full(self.stage1_window, self._unpack(self.stage1_window_bits, self.stage1_window))


@dataclass(frozen=True)
class EnhanceResult:
    """The refined mask and, per region, how it was obtained.

    Attributes
    ----------
    mask : ndarray, H x W
        The refined mask in the coarse mask's encoding (:class:`MaskEncoding`): what is written to
        files.
    policy : str
        The prompt policy that ran.
    regions : tuple of RegionResult
        Per merged region of the coarse mask, its prompts and what the model made of it.
    classes, dropped_classes : ndarray of int32
        The classes of the coarse map, and those without any region left after the filters (kept
        unchanged).
    timings : Timings
    fused : bool
        Soft fusion with the coarse map's probabilities ran.
    labels : ndarray, H x W
        The refined label map in the classes :func:`~samedenhancer.as_label_map` reads from the
        coarse mask (a thresholded soft map's foreground is 1); ``mask`` itself for label maps
        (given as ``None``).
    """

    mask: np.ndarray
    policy: str
    regions: tuple[RegionResult, ...]
    classes: np.ndarray
    dropped_classes: np.ndarray
    timings: Timings
    fused: bool = False
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.labels is None:  # a label map: the mask is its own labels
            object.__setattr__(self, "labels", self.mask)

    @property
    def gate_fired(self) -> int:
        """How many regions fell back to the coarse mask."""
        return sum(r.fell_back for r in self.regions)


@dataclass(frozen=True)
class VolumeResult:
    """The refined volume (``mask``, in the coarse volume's encoding, see :class:`MaskEncoding`), the
    slice axis, the result of each slice (in slice order) and the voxel size given."""

    mask: np.ndarray
    axis: int
    slices: tuple[EnhanceResult, ...]
    spacing: tuple | None = None

    @property
    def labels(self) -> np.ndarray:
        """The refined label volume in the coarse volume's classes (see :attr:`EnhanceResult.labels`)."""
        return np.stack([s.labels for s in self.slices], axis=self.axis)

    @property
    def gate_fired(self) -> int:
        """How many regions of all slices fell back to the coarse mask."""
        return sum(s.gate_fired for s in self.slices)


@dataclass(frozen=True)
class BatchItem:
    """One item of a batch: the result, or the error that stopped it (never both)."""

    index: int
    result: EnhanceResult | None
    error: Exception | None

    @property
    def ok(self) -> bool:
        return self.error is None
