"""samedenhancer.distributed on a local Ray cluster (2 CPUs, loopback only, one per test session) with
real Kvasir images and PraNet maps: the same bytes as ``samedenhancer enhance``, per-file errors as
manifest rows, resume, and an actor killed mid-run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import samedenhancer as se
from samedenhancer import io
from samedenhancer.bench import datasets
from samedenhancer.cli import main

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")

from samedenhancer.distributed import COLUMNS, enhance_dataset  # noqa: E402 - after the skip

GOOD = 4  # real image pairs per folder


@pytest.fixture(scope="session")
def ray_cluster():
    """One local 2-CPU Ray cluster for the whole test session, bound to the loopback address."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def folders(tmp_path_factory, data_root):
    """``GOOD`` Kvasir images with PraNet maps, plus a truncated image and an image without a mask."""
    base = tmp_path_factory.mktemp("distributed")
    images, coarse = base / "images", base / "coarse"
    images.mkdir()
    coarse.mkdir()
    for sample in datasets.samples("kvasir", data_root)[:GOOD]:
        shutil.copy(sample.image_path, images / sample.image_path.name)
        shutil.copy(sample.coarse_paths["pranet"], coarse / f"{sample.stem}.png")
    (images / "truncated.jpg").write_bytes(sample.image_path.read_bytes()[:2000])
    shutil.copy(sample.coarse_paths["pranet"], coarse / "truncated.png")
    shutil.copy(sample.image_path, images / "orphan.jpg")
    return base


@pytest.fixture(scope="module")
def cli_outputs(folders, litemedsam_dir):
    """What the single-process ``samedenhancer enhance`` writes for the same folders."""
    out = folders / "cli"
    main(["enhance", str(folders / "images"), str(folders / "coarse"), "--out", str(out), "--threshold", "127", "--quiet"])
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _manifest(path: Path) -> dict[str, dict]:
    rows = pq.read_table(path).to_pylist() if path.suffix == ".parquet" else _csv_rows(path)
    assert len({row["stem"] for row in rows}) == len(rows), "a stem has more than one row"
    return {row["stem"]: row for row in rows}


def _csv_rows(path: Path) -> list[dict]:
    import pyarrow.csv

    return pyarrow.csv.read_csv(path).to_pylist()


def test_outputs_are_the_clis_bytes_and_bad_files_are_rows(folders, cli_outputs, ray_cluster):
    out = folders / "ray"
    report = enhance_dataset(folders / "images", folders / "coarse", out, num_workers=2, batch_size=1, threshold=127)
    written = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".png"}
    assert len(cli_outputs) == GOOD and written == cli_outputs  # same names, same bytes
    rows = _manifest(out / "manifest.parquet")
    assert list(next(iter(rows.values()))) == list(COLUMNS)
    statuses = {stem: row["status"] for stem, row in rows.items()}
    assert statuses.pop("truncated") == "failed" and statuses.pop("orphan") == "missing"
    assert set(statuses.values()) == {"ok"} and len(statuses) == GOOD
    assert rows["truncated"]["error"] and rows["orphan"]["error"] == "no coarse mask"
    assert all(rows[s]["enhance_s"] > 0 and Path(rows[s]["output"]).name in cli_outputs for s in statuses)
    assert len({rows[s]["worker"] for s in statuses}) == 2  # both actors got work
    assert (report.total, report.enhanced, report.failed, report.missing, report.skipped) == (GOOD + 2, GOOD, 1, 1, 0)
    assert sorted(f.stem for f in report.failures) == ["orphan", "truncated"]
    assert report.images_per_s > 0 and 0 < report.first_output_s <= report.seconds
    assert (report.workers, report.threads_per_worker) == (2, 1)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_cli_ray_resume_skips_finished_outputs(folders, cli_outputs, ray_cluster, capsys):
    out = folders / "resumed"
    out.mkdir()
    first = sorted(cli_outputs)[0]
    (out / first).write_bytes(cli_outputs[first])
    before = (out / first).stat().st_mtime_ns
    code = main(["enhance", str(folders / "images"), str(folders / "coarse"), "--out", str(out), "--threshold", "127",
                 "--ray", "--workers", "2", "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "3 done, 2 failed, 1 already done of 6" in err and "Ray: 2 workers" in err, err
    assert (out / first).stat().st_mtime_ns == before
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".png"} == cli_outputs
    statuses = {stem: row["status"] for stem, row in _manifest(out / "manifest.parquet").items()}
    assert statuses[Path(first).stem] == "skipped" and list(statuses.values()).count("ok") == GOOD - 1


def test_quiet_silences_ray_and_leaves_the_summary(folders, cli_outputs, tmp_path):
    """A local Ray run with --quiet prints the end summary only: none of Ray's start-up and progress
    lines, nor its error-looking core_worker line (issue 30 item 28)."""
    for folder in ("images", "coarse"):
        (tmp_path / folder).mkdir()
    first = sorted(cli_outputs)[0]
    image = next(p for p in (folders / "images").iterdir() if p.stem == Path(first).stem)
    shutil.copy(image, tmp_path / "images" / image.name)
    shutil.copy(folders / "coarse" / first, tmp_path / "coarse" / first)
    command = [sys.executable, "-c", "import sys; from samedenhancer.cli import main; sys.exit(main())", "enhance",
               str(tmp_path / "images"), str(tmp_path / "coarse"), "--out", str(tmp_path / "out"), "--threshold", "127",
               "--ray", "--workers", "1", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ | {"RAY_ADDRESS": ""})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("enhance: 1 done, 0 failed of 1 in "), done.stderr
    assert (tmp_path / "out" / first).read_bytes() == cli_outputs[first]


def _descendants(root: int) -> set[int]:
    """Process ids below ``root`` (this test's own processes: the raylet and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _actor_pids() -> set[int]:
    pids = set()
    for pid in _descendants(os.getpid()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::") and "EnhanceWorker" in title:
            pids.add(pid)
    return pids


def test_killing_an_actor_mid_run_loses_and_duplicates_nothing(folders, cli_outputs, ray_cluster, tmp_path):
    jobs = tmp_path / "images"
    jobs.mkdir()
    for name in (folders / "images").iterdir():  # the good pairs only
        if name.stem not in ("truncated", "orphan"):
            shutil.copy(name, jobs / name.name)
    out = tmp_path / "out"
    killed: list[int] = []
    alive_at_kill: set[int] = set()

    def kill_when_the_first_output_appears():
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not any(out.glob("*.png")):
            time.sleep(0.05)
        alive_at_kill.update(_actor_pids())
        if alive_at_kill:
            victim = min(alive_at_kill)
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    killer = threading.Thread(target=kill_when_the_first_output_appears, daemon=True)
    killer.start()
    report = enhance_dataset(jobs, folders / "coarse", out, num_workers=2, batch_size=2, manifest="csv", threshold=127)
    killer.join(timeout=5)
    assert killed, "no actor process was found to kill"
    rows = _manifest(out / "manifest.csv")
    assert rows.pop("truncated")["status"] == "missing"  # its mask is in coarse/, its image was left out
    assert sorted(rows) == sorted(Path(name).stem for name in cli_outputs)  # one row per file, none lost
    assert {row["status"] for row in rows.values()} == {"ok"} and report.enhanced == GOOD
    workers = {int(row["worker"].rsplit(":", 1)[1]) for row in rows.values()}
    assert workers - alive_at_kill, "no row came from a restarted actor: the killed batch was not retried"
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == cli_outputs
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.gpu
def test_gpu_workers_refine_on_cuda(folders, cli_outputs, ray_cluster, tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime has no CUDAExecutionProvider here (GPU workers need onnxruntime-gpu and a GPU)")
    if ray.cluster_resources().get("GPU", 0) < 1:
        pytest.skip("the local Ray cluster has no GPU")
    report = enhance_dataset(folders / "images", folders / "coarse", tmp_path, num_workers=1, num_gpus_per_worker=1,
                             threshold=127)
    assert report.enhanced == GOOD and report.gpus_per_worker == 1.0
    for name, data in cli_outputs.items():  # CUDA kernels may differ in the last bits: compare the masks
        ours, cpu = io.read_mask(tmp_path / name), io.read_mask(folders / "cli" / name)
        assert 2 * np.sum((ours > 0) & (cpu > 0)) / (np.sum(ours > 0) + np.sum(cpu > 0)) > 0.98


def test_gpu_actors_ask_onnx_runtime_for_cuda(litemedsam_dir):
    import onnxruntime

    from samedenhancer.distributed import EnhanceWorker

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA is available: test_gpu_workers_refine_on_cuda runs the real GPU actors")
    with pytest.raises(ValueError, match="'CUDAExecutionProvider' is not available"):
        EnhanceWorker("litemedsam", None, gpu=True, threads=1, options=se.EnhanceOptions())


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"num_workers": 0}, ValueError, "num_workers must be an int >= 1"),
    ({"batch_size": 2.5}, ValueError, "batch_size must be an int >= 1"),
    ({"num_gpus_per_worker": -1}, ValueError, "num_gpus_per_worker must be a number >= 0"),
    ({"manifest": "json"}, ValueError, "manifest must be one of"),
    ({"format": "jpg"}, ValueError, "format must be one of"),
    ({"treshold": 127}, TypeError, r"unexpected keyword arguments \['treshold'\]"),
])
def test_bad_arguments_are_named_before_any_work(folders, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        enhance_dataset(folders / "images", folders / "coarse", tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())


def test_urls_are_refused_with_what_to_do(folders):
    with pytest.raises(ValueError, match="images must be a folder every worker sees.*mount the bucket"):
        enhance_dataset("s3://bucket/images", folders / "coarse", folders / "out")


def test_an_address_while_connected_is_refused(folders, ray_cluster, tmp_path):
    with pytest.raises(ValueError, match="already connected to a Ray cluster"):
        enhance_dataset(folders / "images", folders / "coarse", tmp_path, address="10.0.0.5:6379")


def test_out_must_not_be_an_input_folder(folders):
    with pytest.raises(ValueError, match="out .* is the coarse folder"):
        enhance_dataset(folders / "images", folders / "coarse", folders / "coarse")


def test_only_the_distributed_module_imports_ray():
    code = ("import sys, samedenhancer, samedenhancer.runner, samedenhancer.cli, samedenhancer.cli.enhance; "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    package = Path(__file__).resolve().parents[1] / "python" / "samedenhancer"
    importers = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py")
                       if any(line.lstrip().startswith(("import ray", "from ray")) for line in p.read_text().splitlines()))
    assert importers == ["bench/distributed.py", "distributed/cluster.py"]  # the benchmark is not on the runtime's path


def test_embed_on_ray_fills_the_store_that_enhance_on_ray_then_reads(folders, cli_outputs, ray_cluster, tmp_path, capsys):
    """``embed --ray``: each actor reopens the store from its folder; ``enhance_dataset(embeddings=)``
    then writes the single-process bytes and adds no entry, and a local ``embed`` finds every key."""
    store_path = tmp_path / "store"
    code = main(["embed", str(folders / "images"), "--embeddings", str(store_path), "--ray", "--workers", "2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and f"embed: {GOOD + 1} done, 1 failed of {GOOD + 2}" in err and "Ray: 2 workers" in err, err
    assert "truncated" in err  # the truncated image is its own failure; the orphan image is embedded
    store = se.EmbeddingStore(store_path)
    entries = sorted(p.name for p in store_path.rglob("*.npz"))
    assert len(entries) == GOOD == len(store)  # the orphan is a copy of an image: one content, one entry
    report = enhance_dataset(folders / "images", folders / "coarse", tmp_path / "out", num_workers=2, batch_size=1,
                             threshold=127, embeddings=store)
    assert report.enhanced == GOOD
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*.png")} == cli_outputs
    assert sorted(p.name for p in store_path.rglob("*.npz")) == entries  # every key found: nothing encoded
    assert main(["embed", str(folders / "images"), "--embeddings", str(store_path), "--quiet"]) == 1
    assert f"embeddings: {GOOD + 1} reused, 0 encoded" in capsys.readouterr().err
    with pytest.raises(TypeError, match="embeddings must be a samedenhancer.EmbeddingStore"):
        enhance_dataset(folders / "images", folders / "coarse", tmp_path / "bad", embeddings=str(store_path))
