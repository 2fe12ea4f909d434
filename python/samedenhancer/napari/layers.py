"""napari layers as the arrays the API takes, with a message naming the layer for what does not fit
(a multiscale layer, a colour stack, shapes that differ, a mask without any label).

napari keeps the slices of a stack on the first axis (Z, Y, X); so do the widgets.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels, Layer, Points

from ..core import as_label_map

__all__ = ["check_has_label", "image_array", "labels_array", "layers_of", "pixel_of", "placement"]


def layers_of(viewer, kind: type):
    """Choices for a layer drop-down: ``(name, layer)`` of the viewer's layers of ``kind``."""

    def choices(_widget=None):
        return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, kind)]

    return choices


def _checked(layer, kind: type, role: str) -> np.ndarray:
    if not isinstance(layer, kind):
        got = "no layer" if layer is None else f"a {type(layer).__name__} layer"
        raise TypeError(f"{role} must be {'an' if kind is Image else 'a'} {kind.__name__} layer, got {got}")
    if layer.multiscale:
        raise ValueError(f"{role} layer {layer.name!r} is multiscale: open one of its levels as a plain layer")
    return np.asarray(layer.data)


def image_array(layer: Image, role: str = "image") -> tuple[np.ndarray, bool]:
    """The pixels of an Image layer and whether they are a stack of slices: (H, W) grey or
    (H, W, 3) RGB (not a stack), or (Z, H, W) grey (a stack)."""
    data = _checked(layer, Image, role)
    if layer.rgb:
        if data.ndim != 3:
            raise ValueError(f"{role} layer {layer.name!r} is a stack of colour images (shape {data.shape}): the "
                             "widgets take colour 2-D images or grey stacks; convert the stack to grey or open "
                             "one image")
        if data.shape[2] != 3:
            raise ValueError(f"{role} layer {layer.name!r} has {data.shape[2]} channels (RGBA?): the model takes "
                             "grey or RGB images")
        return data, False
    if data.ndim not in (2, 3):
        raise ValueError(f"{role} layer {layer.name!r} has {data.ndim} dimensions (shape {data.shape}): the widgets "
                         "take 2-D images or 3-D stacks (Z, Y, X)")
    return data, data.ndim == 3


def labels_array(layer: Labels, shape: tuple, image_name: str, role: str = "labels") -> np.ndarray:
    """The label data of a Labels layer that must match an image of spatial ``shape`` pixel for
    pixel (the layer's own array: copy it before handing it to a worker)."""
    data = _checked(layer, Labels, role)
    if data.shape != tuple(shape):
        raise ValueError(f"{role} layer {layer.name!r} has shape {data.shape}, image layer {image_name!r} "
                         f"{tuple(shape)}: they must match pixel for pixel")
    return data


def check_has_label(labels: np.ndarray, threshold: float | None, name: str, stack: bool) -> None:
    """Raise ``ValueError`` unless some slice of ``labels`` holds a label (as
    :func:`samedenhancer.as_label_map` reads it with ``threshold``)."""
    slices = labels if stack else [labels]
    if not any(as_label_map(s, threshold).any() for s in slices):
        above = "" if threshold is None else f" above the threshold {threshold:g}"
        raise ValueError(f"labels layer {name!r} holds no label{above}: paint the structures first")


def pixel_of(points: Points, index: int, image: Image, shape: tuple) -> tuple[int, ...]:
    """The pixel of ``image`` (data coordinates, rounded; ``shape`` its spatial shape) under point
    ``index`` of ``points``, wherever the two layers are placed in the world."""
    world = points.data_to_world(points.data[index])
    position = np.round(np.asarray(image.world_to_data(world), dtype=np.float64)).astype(np.int64)[-len(shape):]
    if not all(0 <= p < s for p, s in zip(position, shape, strict=True)):
        raise ValueError(f"the click at {tuple(position.tolist())} lies outside image layer {image.name!r} "
                         f"of shape {tuple(shape)}")
    return tuple(int(p) for p in position)


def placement(layer: Layer) -> dict:
    """Where ``layer`` sits in the world, as keywords for ``viewer.add_labels`` (taken when a run
    starts, so that the result lands there even if the layer is gone by then)."""
    return dict(scale=layer.scale, translate=layer.translate, rotate=layer.rotate, shear=layer.shear,
                affine=layer.affine.affine_matrix)
