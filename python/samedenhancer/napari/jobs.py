"""The widgets' model runs: in napari's worker thread, with a progress bar in the activity dock and
a cancel button, and every error shown as a napari notification, never raised into the event loop.

A :class:`Job` hands its work a :class:`Watch`; the work passes it to
:meth:`~samedenhancer.napari.engine.CachedPredictor.watched`, so that every image the model
encodes advances the bar and a cancelled job stops at its next model call
(:class:`~samedenhancer.napari.engine.Cancelled`).
"""

from __future__ import annotations

import functools
from typing import Callable

from magicgui.widgets import Container, Label, PushButton
from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from superqt.utils import ensure_main_thread

from .engine import Cancelled

__all__ = ["Job", "JobWidget", "Watch", "reports_errors", "show_failure"]


def show_failure(what: str, error: BaseException) -> None:
    """A notification naming ``what`` failed and why (the exception's type when it is not one of
    the input errors the API raises with a full message)."""
    reason = str(error) if isinstance(error, (ValueError, TypeError)) else f"{type(error).__name__}: {error}"
    show_error(f"{what}: {reason}")


def reports_errors(what: str):
    """Decorate a widget's event handler so that an error becomes a notification (``what``
    failed: why) instead of an exception in napari's event loop."""

    def decorate(handler):
        @functools.wraps(handler)
        def guarded(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except Exception as error:  # the event loop must never see it
                show_failure(what, error)
                return None

        return guarded

    return decorate


class Watch:
    """What a job's model calls report to: :meth:`check` before each (raises :class:`Cancelled`
    once the job is cancelled), :meth:`tick` after each image."""

    def __init__(self, job: "Job") -> None:
        self._job = job

    def check(self) -> None:
        if self._job.cancelled:
            raise Cancelled(f"{self._job.description}: cancelled")

    def tick(self) -> None:
        self._job.advance()


class Job:
    """``work(watch, *args)`` in a napari worker thread; ``done(result)`` back in the viewer's
    thread unless it failed or was cancelled.

    Parameters
    ----------
    description : str
        The progress bar's text and the start of any message.
    total : int
        Images the work is expected to encode (the bar's length; 0 for an indeterminate bar).
    work : callable
        ``work(watch, *args) -> result``, run in the worker thread.
    done : callable
        ``done(result)``, run in the viewer's thread.
    finished : callable, optional
        Run in the viewer's thread at the end, whatever happened (re-enable buttons).
    """

    def __init__(self, description: str, total: int, work: Callable, *args, done: Callable,
                 finished: Callable | None = None) -> None:
        self.description = description
        self.bar = progress(total=max(int(total), 0), desc=description)
        self._done, self._finished = done, finished
        self.error: BaseException | None = None
        self.worker = create_worker(work, Watch(self), *args, _start_thread=False,
                                    _connect={"returned": self._returned, "errored": self._errored,
                                              "finished": self._end})
        self.worker.start()

    @property
    def cancelled(self) -> bool:
        return self.worker.abort_requested

    @property
    def running(self) -> bool:
        return self.bar is not None

    def cancel(self) -> None:
        """Stop at the next model call; nothing is added to the viewer."""
        self.worker.quit()

    @ensure_main_thread
    def advance(self) -> None:
        if self.bar is not None:
            self.bar.increment_with_overflow()

    def _returned(self, result) -> None:
        try:
            self._done(result)
        except Exception as error:  # showing the result failed: say so, keep the viewer alive
            show_failure(self.description, error)

    def _errored(self, error: BaseException) -> None:
        self.error = error
        if isinstance(error, Cancelled):
            show_info(str(error))
        else:
            show_failure(self.description, error)

    def _end(self) -> None:
        if self.cancelled and self.error is None:  # cancelled after its last model call
            show_info(f"{self.description}: cancelled")
        self.bar.close()
        self.bar = None
        if self._finished is not None:
            self._finished()


class JobWidget(Container):
    """A widget that runs one job at a time: its fields, then a run button, a cancel button and a
    status line. Subclasses connect :meth:`start` (decorated with :func:`reports_errors`), which
    checks the layers and calls :meth:`launch`."""

    def __init__(self, napari_viewer, fields: list, run_text: str) -> None:
        self.viewer = napari_viewer
        self.run_button = PushButton(text=run_text)
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        super().__init__(widgets=[*fields, self.run_button, self.cancel_button, self.status])
        self.job: Job | None = None
        self.run_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)

    def start(self) -> Job | None:
        raise NotImplementedError

    def launch(self, description: str, total: int, work: Callable, *args, done: Callable) -> Job:
        """Run ``work(watch, *args)`` as a :class:`Job` unless one is running (``RuntimeError``)."""
        if self.job is not None and self.job.running:
            raise RuntimeError(f"{description} is running: wait for it or cancel it")
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = f"{description}..."
        self.job = Job(description, total, work, *args, done=done, finished=self._finished)
        return self.job

    def cancel(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()

    def _finished(self) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False
        if self.job.cancelled:
            self.status.value = "cancelled"
        elif self.job.error is not None:
            self.status.value = "failed (see the message)"
