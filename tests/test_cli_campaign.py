"""The campaign over every command that reads or writes files (issue 30): one table of commands, one
list of ways a careless or unlucky user points the outputs at the inputs or at a bad place, and for
every pair the promise: the inputs come out byte-identical, the message says what happened, the
exit status is right (2: refused before any work, 1: some outputs failed, 0: done).

``embed``'s output is its ``--embeddings`` store; every other command that encodes is also run
with a store folder that is, lies in or links to an input (refused before any work, naming it).

The cases: ``--out`` equal to an input, inside an input folder, a link to an input; an input file that
is a link into ``--out``; a read-only ``--out``; a full one (a 64 KiB tmpfs, where this machine lets
the test mount one); a rerun with ``--resume`` after truncating the outputs. The model is not the
subject: the commands run on the fake model of ``fakes.py`` (``export`` stops at every case before
it builds one: its input is the checkpoint, and its full disk fails on the first byte).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from samedenhancer import io
from samedenhancer.cli import main

from fakes import DoublePredictor, record_fake_models


class VolumeDouble(DoublePredictor):
    """The fake model with the full-resolution upscale ``propagate`` asks for (the model frame is the image)."""

    def upscale(self, embedding, low_res_logits):
        return np.asarray(low_res_logits, np.float32)


@dataclass(frozen=True)
class Command:
    """A command of the table: what it reads (paths under the test folder), how it is called with an
    output, whether ``--out`` names a file, whether it resumes, whether it runs the model."""

    name: str
    inputs: tuple[str, ...]
    argv: object  # (base, out) -> list of str
    out_is_file: bool = False
    resume: bool = False
    runs_model: bool = True
    serves: bool = False  # a good --out starts a server: only the refusals are run
    needs: tuple[str, ...] = field(default=())


COMMANDS = [
    Command("enhance", ("images", "coarse"), lambda b, o: ["enhance", f"{b}/images", f"{b}/coarse", "--out", o, "--quiet"],
            resume=True),
    Command("pseudolabel", ("images", "coarse"),
            lambda b, o: ["pseudolabel", f"{b}/images", f"{b}/coarse", "--out", o, "--quiet"], resume=True),
    Command("prior-maps", ("images",), lambda b, o: ["prior-maps", f"{b}/images", "--out", o, "--quiet"], resume=True),
    Command("evaluate", ("coarse", "truth", "images"),
            lambda b, o: ["evaluate", f"{b}/coarse", f"{b}/truth", "--images", f"{b}/images", "--overlay", o, "--quiet"],
            runs_model=False),
    Command("stream", ("images", "coarse"), lambda b, o: ["stream", f"{b}/images", "--coarse", f"{b}/coarse", "--out", o,
                                                          "--quiet"]),
    Command("propagate", ("scan/case.nii.gz", "seed/seed.png"),
            lambda b, o: ["propagate", f"{b}/scan/case.nii.gz", f"{b}/seed/seed.png", "--slice", "1", "--out", o],
            needs=("nibabel",)),
    Command("annotate", ("images", "coarse"), lambda b, o: ["annotate", f"{b}/images", "--coarse", f"{b}/coarse",
                                                            "--out", o, "--port", "0"], serves=True,
            needs=("starlette", "uvicorn")),
    Command("demo", ("images/case0.png", "coarse/case0.png"),
            lambda b, o: ["demo", "--image", f"{b}/images/case0.png", "--coarse", f"{b}/coarse/case0.png", "--out", o],
            out_is_file=True),
    Command("embed", ("images",), lambda b, o: ["embed", f"{b}/images", "--embeddings", o, "--quiet"]),
    Command("export", ("checkpoints/lite_medsam.pth",),
            lambda b, o: ["export", "litemedsam", "--checkpoint", f"{b}/checkpoints/lite_medsam.pth", "--out", o],
            runs_model=False),
]
CASES = ("equal", "inside", "link", "input-linked-into-out", "read-only", "full", "resume")


def _blob(shape=(48, 64), grow=0):
    mask = np.zeros(shape, np.uint8)
    mask[10 - grow:30 + grow, 15 - grow:45 + grow] = 1
    return mask


@pytest.fixture
def base(tmp_path):
    """The inputs of every command: three images with coarse masks and truths, a scan with a seed."""
    rng = np.random.default_rng(0)
    for i in range(3):
        io.write_mask(tmp_path / "images" / f"case{i}.png", rng.integers(0, 255, (48, 64), np.uint8))
        io.write_mask(tmp_path / "coarse" / f"case{i}.png", _blob())
        io.write_mask(tmp_path / "truth" / f"case{i}.png", _blob(grow=2))
    io.write_mask(tmp_path / "seed" / "seed.png", _blob())
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "lite_medsam.pth").write_bytes(rng.bytes(4096))  # export's input (never read here)
    try:
        io.write_volume(tmp_path / "scan" / "case.nii.gz", rng.integers(0, 255, (48, 64, 3)).astype(np.uint8),
                        affine=np.eye(4))
    except ImportError:
        pass  # propagate's row is skipped without nibabel
    return tmp_path


@pytest.fixture
def built(monkeypatch):
    """The fake models the commands build; a server that would start fails the test instead of waiting."""
    models = record_fake_models(monkeypatch, lambda: VolumeDouble(grow=1))
    try:
        import samedenhancer.annotate.server as server
    except ImportError:
        return models

    def refuse(*args, **kwargs):
        raise AssertionError("annotate started its server: the output was not refused")

    monkeypatch.setattr(server, "serve", refuse)
    return models


def _inputs(base: Path, command: Command) -> dict:
    """Every input file's bytes (the promise: byte-identical afterwards)."""
    found = {}
    for name in command.inputs:
        path = base / name
        for item in ([path] if path.is_file() else sorted(path.rglob("*"))):
            if item.is_file():
                found[os.fspath(item.relative_to(base))] = item.read_bytes()
    return found


def _mount_tmpfs(where: Path, *, read_only: bool = False) -> None:
    """A 64 KiB tmpfs at ``where`` (root only), read-only or filled to the last byte."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", os.fspath(where)], capture_output=True).returncode:
        pytest.skip("this machine does not let the test mount a tmpfs")
    (where / "out").mkdir()
    if read_only:
        subprocess.run(["mount", "-o", "remount,ro", os.fspath(where)], check=True)
        return
    filler = os.open(where / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(filler, b"\0" * 4096):
            pass
    except OSError:  # full to the last byte
        pass
    finally:
        os.close(filler)


@pytest.fixture
def mounts():
    """Mount points to unmount after the test."""
    points: list[Path] = []
    yield points
    for point in points:
        subprocess.run(["umount", "-l", os.fspath(point)], capture_output=True)


def _out(base: Path, command: Command, folder: Path) -> Path:
    return folder / "figure.png" if command.out_is_file else folder / "out"


def _refusals(base: Path, command: Command, case: str):
    """``(out, the input it must name)`` for the cases that point the outputs at an input."""
    for index, name in enumerate(command.inputs):
        path = base / name
        if case == "equal":  # an input itself (the folder holding it, for a file given to a folder command)
            yield (path if path.is_dir() or command.out_is_file else path.parent), path
        elif case == "inside" and path.is_dir():
            yield (path / "figure.png" if command.out_is_file else path / "sub" / "out"), path
        elif case == "link":
            link = base / f"link{index}"
            link.symlink_to(path if path.is_dir() or command.out_is_file else path.parent)
            yield link, path


def _input_linked_into_out(base: Path, command: Command) -> tuple[Path, Path]:
    """The last input's first file moved into the output place and linked back: writing the outputs
    there would change the input through the link (issue 30 item 6)."""
    path = base / command.inputs[-1]
    victim = path if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())[0]
    out = _out(base, command, base / "linked")
    home = out if command.out_is_file else out / victim.name
    home.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(victim, home)
    victim.symlink_to(home)
    return out, victim


def _truncate(out: Path) -> dict[str, bytes]:
    """Every output's bytes; then each is cut: to nothing, or to half its length."""
    outputs = {os.fspath(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    for i, name in enumerate(outputs):
        (out / name).write_bytes(b"" if i % 2 else outputs[name][: len(outputs[name]) // 2])
    return outputs


def _applies(command: Command, case: str) -> bool:
    """A server (annotate) runs only the cases it refuses; only commands with --resume resume."""
    return not (command.serves and case in ("full", "resume")) and (case != "resume" or command.resume)


@pytest.mark.parametrize(("command", "case"), [(c, case) for c in COMMANDS for case in CASES if _applies(c, case)],
                         ids=[f"{c.name}-{case}" for c in COMMANDS for case in CASES if _applies(c, case)])
def test_no_command_touches_an_input_and_every_failure_is_said_with_the_right_status(base, built, mounts, capsys,
                                                                                    command, case):
    for module in command.needs:
        pytest.importorskip(module, reason=f"{command.name} needs {module}")
    before = _inputs(base, command)
    prefix = f"samedenhancer {command.name}: "
    if case in ("equal", "inside", "link"):
        for out, named in _refusals(base, command, case):
            code = main(command.argv(base, os.fspath(out)))
            err = capsys.readouterr().err
            assert code == 2 and err.startswith(prefix) and named.name in err, (out, err)
            assert _inputs(base, command) == before and not built  # refused before any work
        return
    if case == "input-linked-into-out":
        out, victim = _input_linked_into_out(base, command)
        linked = victim.read_bytes()
        code = main(command.argv(base, os.fspath(out)))
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(prefix) and victim.name in err and "link" in err, err
        assert victim.read_bytes() == linked and not built
        return
    if case == "read-only":
        if os.geteuid() == 0:  # root writes through file modes: a read-only file system stops it
            mounts.append(base / "ro")
            _mount_tmpfs(base / "ro", read_only=True)
        else:
            (base / "ro" / "out").mkdir(parents=True)
            (base / "ro" / "out").chmod(0o555)
        code = main(command.argv(base, os.fspath(_out(base, command, base / "ro" / "out"))))
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(prefix) and "not a writable folder" in err, err
        assert _inputs(base, command) == before and not built
        return
    if case == "full":
        mounts.append(base / "full")
        _mount_tmpfs(base / "full")
        out = _out(base, command, base / "full" / "out")
        code = main(command.argv(base, os.fspath(out)))
        err = capsys.readouterr().err
        assert code == 1 and "no space left on device" in err.lower() and "Traceback" not in err, err
        assert _inputs(base, command) == before
        assert not [p for p in (base / "full" / "out").rglob("*") if p.name.startswith(".")]  # no partial file left
        return
    out = base / "out"  # resume: a rerun after the outputs were cut redoes exactly them
    assert main(command.argv(base, os.fspath(out))) == 0
    outputs = _truncate(out)
    capsys.readouterr()
    assert main(command.argv(base, os.fspath(out)) + ["--resume"]) == 0, capsys.readouterr().err
    assert {os.fspath(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == outputs
    assert _inputs(base, command) == before


#: The commands that take ``--embeddings`` besides ``embed`` (whose store is its output above).
STORE_COMMANDS = [c for c in COMMANDS if c.name in ("enhance", "pseudolabel", "prior-maps", "propagate", "demo")]


@pytest.mark.parametrize(("command", "case"), [(c, case) for c in STORE_COMMANDS for case in ("equal", "inside", "link")],
                         ids=[f"{c.name}-{case}" for c in STORE_COMMANDS for case in ("equal", "inside", "link")])
def test_no_embedding_store_lands_in_an_input(base, built, capsys, command, case):
    for module in command.needs:
        pytest.importorskip(module, reason=f"{command.name} needs {module}")
    before = _inputs(base, command)
    for index, name in enumerate(command.inputs):
        path = base / name
        folder = path if path.is_dir() else path.parent
        if case == "inside" and not path.is_dir():
            continue  # beside an input file is not in it (as for --out)
        store = {"equal": folder, "inside": folder / "sub" / "store", "link": base / f"store-link{index}"}[case]
        if case == "link":
            store.symlink_to(folder)
        code = main(command.argv(base, os.fspath(_out(base, command, base / "elsewhere"))) + ["--embeddings", os.fspath(store)])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(f"samedenhancer {command.name}: --embeddings") and folder.name in err, err
        assert _inputs(base, command) == before and not built and not (store / "samedenhancer-embeddings.json").exists()
