"""The annotation page's HTTP side: a Starlette app over :class:`~.workflow.Annotator`, served by
uvicorn.

Routes (ids are image stems, looked up in the catalog, never joined to a path)::

    GET  /                          the page (static/index.html)
    GET  /static/{file}             its script and style, from the package (no CDN)
    GET  /api/images                the images, their states and the progress
    GET  /api/embeddings            the background pass's progress (``null`` without one)
    GET  /api/images/{id}/image     the image as PNG
    POST /api/images/{id}/open      refine and start the session (or the state if open)
    GET  /api/images/{id}/mask      the current mask as PNG (0 / 255)
    POST /api/images/{id}/{action}  click, undo, reset, box, accept, skip

Every POST body is a JSON object checked field by field (type, range, no unknown keys) before it
reaches the workflow; a body that is not one (not JSON, nested too deeply, a number too long) is a
400 too. Refusals are JSON ``{"error": ..., "reason": ...}`` with a 4xx status, and an unexpected
exception is a 500 with its message: the server never stops on a request. POSTs must say
``Content-Type: application/json``, which a page from another origin cannot send without a CORS
preflight this server never grants.

The server listens on a loopback address (127.0.0.0/8, ::1, ``localhost``) unless it is told
``allow_remote=True`` (``--allow-remote``), and on loopback it answers only requests whose Host
header names the loopback: a page whose DNS name was rebound to 127.0.0.1 sends its own name and
gets 400.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import validation
from .views import AnnotateError, Invalid
from .workflow import Annotator

__all__ = ["DEFAULT_PORT", "bind", "check_host", "create_app", "in_thread", "is_loopback", "listen", "parse_body", "serve",
           "server"]

DEFAULT_PORT = 8765
#: Largest request body accepted (a click is ~100 bytes).
MAX_BODY = 16 * 1024
#: Most digits of an integer in a request body (a version, a coordinate): longer ones are refused
#: before Python converts them (which takes time quadratic in the digits).
MAX_DIGITS = 18
STATIC = "static"


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


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise Invalid(f"the body holds an integer of {digits} digits; requests take at most {MAX_DIGITS}")
    return int(text)


def parse_body(raw: bytes, fields: dict) -> dict:
    """The JSON object in ``raw`` with exactly the keys of ``fields``, each checked; ``Invalid``
    (400) for anything else."""
    try:
        body = json.loads(raw, parse_int=_bounded_int)
    except Invalid:
        raise
    except RecursionError:
        raise Invalid("the body must be a JSON object of plain fields: it is nested too deeply") from None
    except ValueError as error:  # not UTF-8, not JSON
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


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address, IPv6 with or without brackets) is this machine's
    loopback: ``localhost``, 127.0.0.0/8 or ::1."""
    if not isinstance(host, str):
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of(header: str | None) -> str | None:
    """The host of a Host header (``name``, ``name:port``, ``[v6]`` or ``[v6]:port``); ``None`` when
    it is malformed."""
    if not header:
        return None
    if header.startswith("["):
        host, bracket, rest = header[1:].partition("]")
        if not bracket:
            return None
    else:
        host, colon, port = header.partition(":")
        rest = colon + port
    return host if rest == "" or (rest[0] == ":" and rest[1:].isdigit()) else None


class LoopbackHostOnly:
    """ASGI middleware: a request whose Host header does not name the loopback (a page whose DNS
    name was rebound to 127.0.0.1) gets 400 before it reaches a route."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            header = Headers(scope=scope).get("host")
            if not is_loopback(_host_of(header)):
                response = _error(400, f"the Host header {header!r} does not name this machine's loopback address "
                                       "(127.0.0.0/8, ::1, localhost)", "host")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(annotator: Annotator, *, loopback_only: bool = True) -> Starlette:
    """The Starlette application serving ``annotator``.

    Parameters
    ----------
    annotator : Annotator
    loopback_only : bool
        Answer only requests whose Host header names the loopback (DNS rebinding); ``False`` only
        for a server that other machines reach (``allow_remote``).
    """
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

    async def embeddings(request: Request) -> Response:
        progress = annotator.progress()
        return JSONResponse(None if progress is None else asdict(progress), headers={"Cache-Control": "no-store"})

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
        Route("/api/embeddings", embeddings),
        Route("/api/images/{id}/image", image),
        Route("/api/images/{id}/mask", mask),
        Route("/api/images/{id}/open", open_image, methods=["POST"]),
        Route("/api/images/{id}/{action}", act, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("samedenhancer.annotate", STATIC)]), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(LoopbackHostOnly)] if loopback_only else [],
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


@contextlib.contextmanager
def in_thread(uv, sock: socket.socket, timeout: float = 30):
    """Run the uvicorn server ``uv`` on the listening socket ``sock`` (as :func:`listen` makes them)
    in a thread, for benchmarks and tests; yields the socket's ``(host, port)`` once it listens, and
    stops the server and closes the socket on exit."""
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            uv.should_exit = True
            sock.close()
            raise RuntimeError("the annotation server did not start")
        time.sleep(0.01)
    try:
        yield sock.getsockname()[:2]
    finally:
        uv.should_exit = True
        thread.join(timeout)
        sock.close()


def check_host(host: str, allow_remote: bool = False) -> bool:
    """Whether ``host`` is a loopback address; ``ValueError`` for any other unless ``allow_remote``."""
    loopback = is_loopback(host)
    if not loopback and not validation.flag(allow_remote, "allow_remote"):
        raise ValueError(f"host {host!r} is not a loopback address (127.0.0.0/8, ::1, localhost): anyone who can reach "
                         "it could read the images and write masks, with no authentication; allow it explicitly "
                         "(--allow-remote, allow_remote=True) only on a trusted network")
    return loopback


def listen(annotator: Annotator, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, allow_remote: bool = False):
    """``(server, socket)``: ``annotator``'s app in a uvicorn server and a socket listening on
    ``host:port``, ready for ``server.run(sockets=[socket])``. A non-loopback ``host`` needs
    ``allow_remote=True``; on loopback, requests must name the loopback in their Host header."""
    loopback = check_host(host, allow_remote)
    sock = bind(host, port)
    return server(create_app(annotator, loopback_only=loopback)), sock


def serve(annotator: Annotator, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, allow_remote: bool = False,
          announce=print) -> None:
    """Serve ``annotator`` on ``host:port`` until interrupted (see :func:`listen`), calling
    ``announce(url)`` once listening."""
    uv, sock = listen(annotator, host, port, allow_remote=allow_remote)
    address = sock.getsockname()
    shown = f"[{address[0]}]" if ":" in address[0] else address[0]
    announce(f"http://{shown}:{address[1]}/")
    uv.run(sockets=[sock])
