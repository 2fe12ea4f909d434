"""The C++ core releases the GIL: Python code keeps running while it works, and two threads
overlap. Robust on a loaded machine: several tries, generous margins, and the evidence is the
longest stall of a Python thread (a held GIL stalls it for a whole call)."""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np
import pytest

from samedenhancer import distance_transform, metrics, mine_prompts


def _big_mask() -> np.ndarray:
    rng = np.random.default_rng(0)
    mask = np.ones((2048, 2048), np.uint8)
    mask[rng.integers(0, 2048, 40), rng.integers(0, 2048, 40)] = 0
    return mask


@pytest.mark.parametrize("work", ["distance_transform", "mine_prompts", "distance_transform_3d", "hd95_3d"])
def test_python_thread_runs_during_a_call(work):
    mask = _big_mask()
    volume = np.ascontiguousarray(mask[:1024, :1024].reshape(16, 256, 256))
    # calls well above a loaded machine's scheduling delays (~20 ms): the 3-D transform gets 4M voxels
    big_volume = mask.reshape(64, 256, 256)
    fn = {
        "distance_transform": lambda: distance_transform(mask),
        "mine_prompts": lambda: mine_prompts(mask, ring_radius=60),
        "distance_transform_3d": lambda: distance_transform(big_volume, spacing=(2.5, 1.0, 1.0)),
        "hd95_3d": lambda: metrics.hd95(volume, np.roll(volume, 3, axis=1), spacing=(2.5, 1.0, 1.0)),
    }[work]
    start = time.perf_counter()
    fn()
    call = time.perf_counter() - start
    stalls = []
    for _ in range(3):
        done = threading.Event()

        def worker():
            for _ in range(3):
                fn()
            done.set()

        thread = threading.Thread(target=worker)
        longest, last = 0.0, time.perf_counter()
        thread.start()
        while not done.is_set():
            now = time.perf_counter()
            longest, last = max(longest, now - last), now
        thread.join()
        stalls.append(longest)
        if longest < 0.5 * call:
            break
    # With the GIL held the main thread stalls for >= one whole call each time.
    assert min(stalls) < 0.5 * call, f"Python stalled {min(stalls) * 1e3:.0f} ms during {call * 1e3:.0f} ms calls"


def _two_thread_ratio(work) -> float:
    """Wall time of `work` in two threads at once over its time in one thread (2 = serialised)."""
    start = time.perf_counter()
    work()
    one = time.perf_counter() - start
    threads = [threading.Thread(target=work) for _ in range(2)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - start) / one


def test_two_threads_overlap():
    """Two threads finish in clearly less than 2x one thread. On a machine without a free second
    core nothing can overlap: each try is paired with a GIL-free baseline (hashlib on a large
    buffer), and the test fails only when the baseline overlapped in every try and ours never did."""
    rng = np.random.default_rng(1)
    mask = np.ones((512, 512), np.uint8)  # fits in cache: two threads do not fight over memory bandwidth
    mask[rng.integers(0, 512, 20), rng.integers(0, 512, 20)] = 0
    payload = bytes(4 << 20)

    def ours():
        for _ in range(60):
            distance_transform(mask)

    def gil_free_baseline():
        for _ in range(6):
            hashlib.sha256(payload).digest()

    tries = []
    for _ in range(5):
        mine = _two_thread_ratio(ours)
        if mine < 1.6:
            return
        tries.append((mine, _two_thread_ratio(gil_free_baseline)))
    summary = ", ".join(f"{m:.2f}x (baseline {b:.2f}x)" for m, b in tries)
    if any(b >= 1.6 for _, b in tries):
        pytest.skip(f"no free second core during some tries, two threads vs one: {summary}")
    raise AssertionError(f"two threads never overlapped although a GIL-free baseline did: {summary}")
