"""The annotation page's HTTP side: a Starlette app over :class:`~.workflow.Annotator`, served by
uvicorn.

Routes (ids are image stems, looked up in the catalog, never joined to a path)::

    GET  /                          the page (static/index.html)
    GET  /static/{file}             its script and style, from the package (no CDN)
    GET  /api/images                the images, their states and the progress
    GET  /api/images/{id}/image     the image as PNG
    POST /api/images/{id}/open      refine and start the session (or the state if open)
    GET  /api/images/{id}/mask      the current mask as PNG (0 / 255)
    POST /api/images/{id}/{action}  click, undo, reset, box, accept, skip

Every POST body is a JSON object checked field by field (type, range, no unknown keys) before it
reaches the workflow; refusals are JSON ``{"error": ..., "reason": ...}`` with a 4xx status, and
an unexpected exception is a 500 with its message: the server never stops on a request. POSTs
must say ``Content-Type: application/json``, which a page from another origin cannot send
without a CORS preflight this server never grants, and the Host header must name the address the
server was started on (DNS rebinding).
"""

from __future__ import annotations

import json
import socket
import sys
import traceback
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import validation
from .views import AnnotateError, Invalid
from .workflow import Annotator

__all__ = ["DEFAULT_PORT", "LOCAL_HOSTS", "bind", "create_app", "parse_body", "serve", "server"]

DEFAULT_PORT = 8765
#: Largest request body accepted (a click is ~100 bytes).
MAX_BODY = 16 * 1024
STATIC = "static"
#: Host names of this machine's loopback address, the only ones served unless ``--host`` is given.
LOCAL_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class _Field:
    kind: str  # "number", "int", "bool", "str", "box", "choice"
    choices: tuple = ()


_OP = {"op": _Field("str"), "version": _Field("int")}
#: The body each action takes (besides ``op`` and ``version``).
ACTIONS = {
    "click": {"x": _Field("number"), "y": _Field("number"), "positive": _Field("bool")},
    "undo": {},
    "reset": {"to": _Field("choice", ("refined", "coarse"))},
    "box": {"box": _Field("box")},
    "accept": {},
    "skip": {},
}


class UnsupportedMedia(AnnotateError):
    """A POST body that is not declared as JSON."""

    status = 415


def _check(name: str, value, spec: _Field):
    """``value`` checked by :mod:`samedenhancer.validation` (and the two kinds only requests have),
    as :class:`Invalid` (400)."""
    try:
        if spec.kind == "number":
            validation.number(value, name)
        elif spec.kind == "int":
            validation.integer(value, name, low=0)
        elif spec.kind == "bool":
            validation.flag(value, name)
        elif spec.kind == "choice":
            validation.choice(value, name, spec.choices)
        elif spec.kind == "str" and not (isinstance(value, str) and 0 < len(value) <= 64):
            raise ValueError(f"{name} must be a string of 1 to 64 characters, got {value!r}")
        elif spec.kind == "box":
            if not (isinstance(value, list) and len(value) == 4):
                raise ValueError(f"{name} must be [x0, y0, x1, y1], got {value!r}")
            for i, v in enumerate(value):
                validation.number(v, f"{name}[{i}]")
    except (TypeError, ValueError) as error:
        raise Invalid(str(error)) from None
    return value


def parse_body(raw: bytes, fields: dict) -> dict:
    """The JSON object in ``raw`` with exactly the keys of ``fields``, each checked; ``Invalid``
    (400) for anything else."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Invalid(f"the body must be JSON: {error}") from None
    if not isinstance(body, dict):
        raise Invalid(f"the body must be a JSON object, got {type(body).__name__}")
    missing, unknown = set(fields) - set(body), set(body) - set(fields)
    if missing or unknown:
        raise Invalid(f"the body needs the fields {sorted(fields)}"
                      + (f"; missing {sorted(missing)}" if missing else "")
                      + (f"; unknown {sorted(unknown)}" if unknown else ""))
    return {name: _check(name, body[name], spec) for name, spec in fields.items()}


def _error(status: int, message: str, reason: str | None = None, state: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "reason": reason, "state": state}, status_code=status)


def create_app(annotator: Annotator, *, allowed_hosts=None) -> Starlette:
    """The Starlette application serving ``annotator``.

    Parameters
    ----------
    annotator : Annotator
    allowed_hosts : sequence of str
        Host names the ``Host`` header may carry (``"*"`` for any; default :data:`LOCAL_HOSTS`).
    """
    allowed_hosts = LOCAL_HOSTS if allowed_hosts is None else allowed_hosts
    json_types = ("application/json",)

    async def body_of(request: Request, fields: dict) -> dict:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in json_types:
            raise UnsupportedMedia(f"POST bodies must be application/json, got {content_type or 'no content type'!r}")
        return parse_body(await request.body(), fields)

    async def index(request: Request) -> Response:
        return FileResponse(_static_dir() / "index.html", headers={"Cache-Control": "no-store"})

    async def listing(request: Request) -> Response:
        return JSONResponse(asdict(await run_in_threadpool(annotator.listing)))

    async def image(request: Request) -> Response:
        data = await run_in_threadpool(annotator.image_png, request.path_params["id"])
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def mask(request: Request) -> Response:
        current = await run_in_threadpool(annotator.mask, request.path_params["id"])
        ok, encoded = cv2.imencode(".png", current.astype(np.uint8) * 255)
        return Response(encoded.tobytes(), media_type="image/png", headers={"Cache-Control": "no-store"})

    async def open_image(request: Request) -> Response:
        await body_of(request, {})
        return JSONResponse(asdict(await run_in_threadpool(annotator.open, request.path_params["id"])))

    async def act(request: Request) -> Response:
        image_id, action = request.path_params["id"], request.path_params["action"]
        annotator.entry(image_id)  # an unknown id is a 404 before anything else
        if action not in ACTIONS:
            raise Invalid(f"unknown action {action!r}, expected one of {sorted(ACTIONS)}")
        body = await body_of(request, {**_OP, **ACTIONS[action]})
        op, version = body.pop("op"), body.pop("version")
        view = await run_in_threadpool(annotator.apply, image_id, op, version, action, **body)
        return JSONResponse(asdict(view))

    async def refused(request: Request, error: AnnotateError) -> Response:
        return _error(error.status, str(error), error.reason, None if error.state is None else asdict(error.state))

    async def http_error(request: Request, error: HTTPException) -> Response:
        return _error(error.status_code, str(error.detail))

    async def unexpected(request: Request, error: Exception) -> Response:
        traceback.print_exception(error, file=sys.stderr)
        return _error(500, f"{type(error).__name__}: {error}")

    routes = [
        Route("/", index),
        Route("/api/images", listing),
        Route("/api/images/{id}/image", image),
        Route("/api/images/{id}/mask", mask),
        Route("/api/images/{id}/open", open_image, methods=["POST"]),
        Route("/api/images/{id}/{action}", act, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("samedenhancer.annotate", STATIC)]), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))],
        exception_handlers={AnnotateError: refused, HTTPException: http_error, Exception: unexpected},
        max_body_size=MAX_BODY,
    )


def _static_dir():
    from importlib.resources import files

    return files("samedenhancer.annotate") / STATIC


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port); ``OSError`` says why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def server(app: Starlette):
    """A uvicorn server for ``app``: ``server(app).run(sockets=[bind(host, port)])``; setting its
    ``should_exit`` stops it."""
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))


def serve(annotator: Annotator, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, announce=print) -> None:
    """Serve ``annotator`` on ``host:port`` until interrupted, calling ``announce(url)`` once
    listening."""
    hosts = LOCAL_HOSTS if host in LOCAL_HOSTS else ["*"]
    sock = bind(host, port)
    address = sock.getsockname()
    shown = f"[{address[0]}]" if ":" in address[0] else address[0]
    app = create_app(annotator, allowed_hosts=hosts)
    announce(f"http://{shown}:{address[1]}/")
    server(app).run(sockets=[sock])
