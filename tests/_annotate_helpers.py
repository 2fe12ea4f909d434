"""A stand-in for the model behind the annotation page, for the tests where the model is not the
subject (requests, validation, safety, concurrency): a session that paints disks where it is clicked."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time

import numpy as np


#: Size of the images :func:`image_folders` writes.
W, H = 80, 60


def image_folders(root, names, seed: int = 0):
    """``root/images/<name>.png`` (random RGB, W x H) and ``root/coarse/<name>.png`` (a 30 x 30 square
    of 255 at x 20..49, y 10..39) for each name; returns ``root``."""
    import cv2

    rng = np.random.default_rng(seed)
    images, coarse = root / "images", root / "coarse"
    images.mkdir()
    coarse.mkdir()
    square = np.zeros((H, W), np.uint8)
    square[10:40, 20:50] = 255
    for name in names:
        cv2.imwrite(str(images / f"{name}.png"), rng.integers(0, 255, (H, W, 3), np.uint8))
        cv2.imwrite(str(coarse / f"{name}.png"), square)
    return root


class DiskSession:
    """The :class:`samedenhancer.InteractiveSession` interface: ``start(box=|point=|mask=)``,
    ``click(x, y, positive)`` adds or removes a disk of radius 6, ``undo()``, ``mask``, ``clicks``."""

    radius = 6

    def __init__(self, image: np.ndarray, delay: float = 0.0) -> None:
        self.shape = image.shape[:2]
        self.delay = delay
        self._masks: list[np.ndarray] = []
        self.clicks: list[tuple[int, int, bool]] = []

    def _disk(self, x, y):
        yy, xx = np.ogrid[: self.shape[0], : self.shape[1]]
        return (xx - x) ** 2 + (yy - y) ** 2 <= self.radius**2

    def start(self, *, box=None, point=None, mask=None):
        if sum(v is not None for v in (box, point, mask)) != 1:
            raise ValueError("give exactly one of box, point, mask")
        if mask is not None:
            start = np.asarray(mask, bool).copy()
        elif point is not None:
            start = self._disk(*point)
            self._masks, self.clicks = [start], [(*point, True)]  # the start point is the first click
            return start
        else:
            x0, y0, x1, y1 = box  # inclusive pixels, as InteractiveSession's
            start = np.zeros(self.shape, bool)
            start[y0 : y1 + 1, x0 : x1 + 1] = True
        self._masks, self.clicks = [start], []
        return start

    def click(self, x, y, positive=True):
        if not self._masks:
            raise RuntimeError("click before start")
        if not (0 <= x < self.shape[1] and 0 <= y < self.shape[0]):
            raise ValueError(f"click ({x}, {y}) outside the image")
        time.sleep(self.delay)
        disk = self._disk(x, y)
        self._masks.append(self._masks[-1] | disk if positive else self._masks[-1] & ~disk)
        self.clicks.append((x, y, positive))
        return self._masks[-1]

    def undo(self):
        if len(self._masks) == 1:
            raise RuntimeError("nothing to undo")
        self._masks.pop()
        self.clicks.pop()
        return self._masks[-1]

    @property
    def mask(self):
        return self._masks[-1]


class DiskBackend:
    """``open(image, coarse)``: a :class:`DiskSession` and the coarse mask eroded by one pixel as the
    "refined" one; counts how often it opened an image."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.opened = 0
        self._lock = threading.Lock()

    def open(self, image, coarse):
        import cv2

        with self._lock:
            self.opened += 1
        refined = None
        if coarse is not None:
            refined = cv2.erode((coarse > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        return DiskSession(image, self.delay), refined, {"encode": 0.0, "refine": 0.0}


@contextlib.contextmanager
def running(app, host: str = "127.0.0.1", port: int = 0):
    """Serve ``app`` with uvicorn in a thread (port 0: a free one); yields ``(host, port)``."""
    from samedenhancer.annotate.server import bind, server

    with started(server(app), bind(host, port)) as address:
        yield address


def started(uv, sock):
    """Run the uvicorn server ``uv`` on the listening socket ``sock`` in a thread (as
    :func:`samedenhancer.annotate.server.listen` makes them); yields the socket's ``(host, port)``."""
    from samedenhancer.annotate.server import in_thread

    return in_thread(uv, sock)


class Client:
    """Raw HTTP requests to a running server (``http.client``: paths go out exactly as written)."""

    def __init__(self, address) -> None:
        self.host, self.port = address

    def request(self, method: str, path: str, body=None, *, headers=None, raw: bytes | None = None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            content = response.read()
        finally:
            connection.close()
        kind = response.getheader("content-type", "")
        return response.status, (json.loads(content) if kind.startswith("application/json") else content)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)
