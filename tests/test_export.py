"""The exporter's own bookkeeping (no model is built here)."""

from __future__ import annotations

import os
import time

from samedenhancer.export import ABANDONED_AFTER_S, _remove_abandoned_staging


def test_a_killed_exports_staging_folder_is_removed_and_a_live_one_is_kept(tmp_path):
    target = tmp_path / "litemedsam"
    abandoned, live, other = tmp_path / ".litemedsam-abc123", tmp_path / ".litemedsam-def456", tmp_path / ".medsam2-xyz"
    for folder in (abandoned, live, other):
        folder.mkdir()
        (folder / "encoder.onnx").write_bytes(b"half written")
    old = time.time() - 2 * ABANDONED_AFTER_S
    os.utime(abandoned, (old, old))
    os.utime(other, (old, old))
    _remove_abandoned_staging(target)
    assert not abandoned.exists()
    assert live.exists()  # may be another process's export in progress
    assert other.exists()  # another model's: not this export's to remove
