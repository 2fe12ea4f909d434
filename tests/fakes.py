"""The test doubles shared by the suite, one place: a deterministic fake model for tests where the
model is not the subject, counting and caching wrappers around a predictor, and a way to make the
CLI run on the fake model."""

from __future__ import annotations


import numpy as np


class FakeManifest:
    name = "double"
    input_size = 64
    default_policy = "box"
    trained_prompts = ("box",)


class DoublePredictor:
    """Returns, for each box, logits that are +`height` inside the box and -1 outside, and an IoU
    prediction from `ious`; records every call. The image is validated as the real predictor's
    preprocessing validates it (no model runs)."""

    manifest = FakeManifest()

    def __init__(self, heights=None, ious=None, grow=0, grow_where=None):
        self.heights, self.ious, self.grow, self.grow_where = heights, ious, grow, grow_where
        self.calls = []

    def encode(self, image):
        from samedenhancer.transforms import check_image

        check_image(image)
        self.calls.append(("encode", image.shape))
        return image.shape[:2]

    def decode(self, embedding, point_coords=None, point_labels=None, box=None, multimask_output=False):
        boxes = box
        h, w = embedding
        n = len(boxes) if boxes is not None else len(point_coords)
        c = 3 if multimask_output else 1
        self.calls.append(("decode", n, boxes is not None, point_coords is not None, multimask_output))
        logits = -np.ones((n, c, h, w), np.float32)
        for i in range(n):
            if boxes is not None:
                x0, y0, x1, y1 = boxes[i].astype(int)
            else:
                (x0, y0) = (x1, y1) = point_coords[i, 0].astype(int)
            g = self.grow if self.grow_where is None or boxes is None or self.grow_where(boxes[i]) else 0
            height = 1.0 if self.heights is None else self.heights[i]
            logits[i, :, max(y0 - g, 0) : y1 + 1 + g, max(x0 - g, 0) : x1 + 1 + g] = height
        iou = np.full((n, c), 0.9, np.float32) if self.ious is None else np.repeat(np.asarray(self.ious, np.float32)[:, None], c, 1)
        return logits, iou

    def upscale_window(self, embedding, low_res_logits, floor=0.0, include=None):
        """Native resolution = the model frame: the window of the logits above ``floor``."""
        from samedenhancer.transforms import logits_window

        window = logits_window(low_res_logits, low_res_logits.shape, floor, include)
        x0, y0, x1, y1 = window
        return window, np.asarray(low_res_logits, np.float32)[y0 : y1 + 1, x0 : x1 + 1]


class CountingPredictor:
    """A predictor (the real one or :class:`DoublePredictor`), counting encoder calls and failing
    the decoder for one image size."""

    def __init__(self, predictor, fail_decode_for=None):
        self._predictor = predictor
        self.manifest = predictor.manifest
        self.encodes = 0
        self.fail_decode_for = fail_decode_for

    def prepare(self, image):
        return self._predictor.prepare(image)

    def encode_prepared(self, prepared):
        self.encodes += 1
        return self._predictor.encode_prepared(prepared)

    def encode(self, image):
        return self.encode_prepared(self.prepare(image))

    def decode(self, embedding, *args, **kwargs):
        if embedding.original_size == self.fail_decode_for:
            raise RuntimeError("decoder failed on purpose")
        return self._predictor.decode(embedding, *args, **kwargs)

    def upscale_window(self, embedding, low_res, **options):
        return self._predictor.upscale_window(embedding, low_res, **options)


class CachingPredictor:
    """A predictor whose ``encode`` remembers every image it encoded (by its bytes), so that tests
    running several propagations through one volume encode each slice once."""

    def __init__(self, predictor):
        self._predictor = predictor
        self.manifest = predictor.manifest
        self._embeddings = {}

    def encode(self, image):
        key = (image.shape, image.dtype.str, image.tobytes())
        if key not in self._embeddings:
            self._embeddings[key] = self._predictor.encode(image)
        return self._embeddings[key]

    def decode(self, embedding, *args, **kwargs):
        return self._predictor.decode(embedding, *args, **kwargs)

    def upscale(self, embedding, low_res):
        return self._predictor.upscale(embedding, low_res)

    def upscale_window(self, embedding, low_res, **options):
        return self._predictor.upscale_window(embedding, low_res, **options)


class FailingPredictor(DoublePredictor):
    """:class:`DoublePredictor` that raises ``error`` when encoding an image of height ``height``
    (an unexpected exception type from deep inside a dependency, as ``cv2.error`` is)."""

    def __init__(self, height: int, error: BaseException, **options):
        super().__init__(**options)
        self.height, self.error = height, error

    def encode(self, image):
        if image.shape[0] == self.height:
            raise self.error
        return super().encode(image)


def use_fake_model(monkeypatch=None, predictor_factory=DoublePredictor) -> None:
    """Make every predictor built from a model name or folder (what the CLI builds: they all go
    through ``samedenhancer.predictor.as_predictor``) use ``predictor_factory()`` instead; with
    ``monkeypatch`` undone after the test, without it for the rest of the process (a subprocess
    running the CLI)."""
    import samedenhancer.predictor

    def fake_predictor(model="litemedsam", providers=None, **options):
        return predictor_factory()

    if monkeypatch is not None:
        monkeypatch.setattr(samedenhancer.predictor, "Predictor", fake_predictor)
    else:
        samedenhancer.predictor.Predictor = fake_predictor


def record_fake_models(monkeypatch, make=lambda: DoublePredictor(grow=1)) -> list:
    """:func:`use_fake_model` with ``make()`` for every model built; the list of those built (a test
    asserts it is empty where a command must refuse before any work)."""
    built: list = []
    use_fake_model(monkeypatch, lambda: built.append(make()) or built[-1])
    return built
