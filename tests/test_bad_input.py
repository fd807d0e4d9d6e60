"""Bad input, interrupted runs and safe outputs (issue 4): real broken files made here, run through the CLI."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import LFW, VIDEOS, frames_committed, need, write_video
from PIL import Image

from person_cluster.outputs.naming import cluster_folder, frame_stem, safe_name
from person_cluster.sampling import InputError, read_image

PY = [sys.executable, "-m", "person_cluster"]


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*PY, *args], check=False, capture_output=True, text=True, timeout=timeout)


def huge_png(path: Path, side: int = 30_000) -> Path:
    """A valid 30,000 x 30,000 grey PNG (900 MP) that is under 1 MB on disk: all-black rows compress well."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    z = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    """One run over a folder of every kind of bad input plus photos in odd formats and with odd names."""
    need(LFW)
    need(VIDEOS)
    root = tmp_path_factory.mktemp("bad")
    src = root / "-in put é"  # a folder name with a leading dash, a space and unicode
    src.mkdir()
    face = cv2.imread(str(LFW / "Serena_Williams" / "Serena_Williams_0001.jpg"))
    (src / "empty.mp4").write_bytes(b"")
    (src / "empty.jpg").write_bytes(b"")
    (src / "notes.mp4").write_text("this is a text file, not a video\n")
    (src / "notes.jpg").write_text("this is a text file, not a photo\n")
    (src / "report.pdf").write_bytes(b"%PDF-1.4\n")
    intel = (VIDEOS / "intel_one-by-one-person-detection.mp4").read_bytes()  # index (moov) at the start
    (src / "cut in half.mp4").write_bytes(intel[: len(intel) // 2])
    (src / "header only.mp4").write_bytes(intel[: intel.find(b"mdat") + 4])  # opens, but no frame data
    hamilton = (VIDEOS / "short_hamilton_clip.mp4").read_bytes()  # index at the end: lost when cut
    (src / "cut before index.mp4").write_bytes(hamilton[: len(hamilton) // 2])
    huge_png(src / "huge.png")
    cv2.imwrite(str(src / "sixteen-bit.png"), face.astype(np.uint16) * 257)
    cv2.imwrite(str(src / "alpha.png"), np.dstack([face, np.full(face.shape[:2], 200, np.uint8)]))
    cv2.imwrite(str(src / "grey.jpg"), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    Image.fromarray(face[:, :, ::-1]).convert("CMYK").save(src / "cmyk.jpg")
    assert Image.open(src / "cmyk.jpg").mode == "CMYK"
    cv2.imwrite(str(src / "-dash ü.jpg"), face)
    out = root / "out"
    # Options first, then "--": what a user types for paths that start with a dash.
    r = cli("run", "-o", str(out), "-q", "--set", "sampling.capture_interval_sec=10",
            "--", str(src), str(root / "missing.mp4"))
    return src, out, r


@pytest.mark.pipeline
def test_every_bad_input_is_skipped_with_its_reason(bad_run):
    _, out, r = bad_run
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    m = json.loads((out / "manifest.json").read_text())
    status = {Path(i["source"]).name: (i["status"], i["reason"]) for i in m["inputs"]}
    expected = {
        "missing.mp4": "no such file or folder",
        "empty.mp4": "file is empty",
        "empty.jpg": "file is empty",
        "notes.mp4": "not a readable video",
        "notes.jpg": "not a readable image",
        "report.pdf": "unsupported file type '.pdf'",
        "header only.mp4": "no decodable frames",
        "cut before index.mp4": "cut short before its index",
        "huge.png": "more than the 100,000,000 pixels",
    }
    for name, reason in expected.items():
        assert status[name][0] == "skipped" and reason in status[name][1], (name, status[name])
        # The user sees one line per skipped input naming the file and the reason.
        assert sum(name in line and reason in line for line in r.stderr.splitlines()) == 1, name
    for name in ("cut in half.mp4", "sixteen-bit.png", "alpha.png", "grey.jpg", "cmyk.jpg", "-dash ü.jpg"):
        assert status[name] == ("done", None), name
    # The readable half of the truncated video was used, and the user was told it ends early.
    half = [f for f in m["frames"] if Path(f["source"]).name == "cut in half.mp4"]
    assert len(half) >= 5 and "ends early" in r.stderr
    # Each odd-format photo was decoded correctly: Serena Williams found in every one, all in one cluster.
    photo_faces = [f for f in m["faces"] if Path(f["source"]).suffix in (".png", ".jpg")]
    assert {Path(f["source"]).name for f in photo_faces} == {"sixteen-bit.png", "alpha.png", "grey.jpg", "cmyk.jpg", "-dash ü.jpg"}
    assert len({f["cluster"] for f in photo_faces}) == 1 and photo_faces[0]["cluster"] >= 0
    for f in m["faces"]:
        assert (out / f["crop"]).is_file()


def test_the_ray_engine_skips_the_same_inputs_with_the_same_lines_and_manifest(bad_run, tmp_path):
    """Bad inputs on the Ray engine, videos in 2-s chunks (the truncated one too): what the local engine does."""
    src, out, r = bad_run
    ray_out = tmp_path / "out"
    r2 = cli("run", "-o", str(ray_out), "-q", "--set", "sampling.capture_interval_sec=10", "--set", "runtime.engine=ray",
             "--set", "runtime.chunk_sec=2", "--", str(src), str(src.parent / "missing.mp4"))
    assert r2.returncode == 0 and "Traceback" not in r2.stderr, r2.stderr
    assert sorted(r2.stderr.splitlines()) == sorted(r.stderr.splitlines())
    local, ray = (json.loads((o / "manifest.json").read_text()) for o in (out, ray_out))
    del local["config"]["runtime"], ray["config"]["runtime"]
    assert ray == local


def test_huge_image_is_refused_without_decoding(tmp_path):
    path = huge_png(tmp_path / "big.png")
    started = time.perf_counter()
    with pytest.raises(InputError, match="more than the"):
        read_image(str(path))
    assert time.perf_counter() - started < 5  # decoding 900 MP would take far longer (and 2.7 GB)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_file_is_skipped(tmp_path):
    photo = tmp_path / "secret.jpg"
    cv2.imwrite(str(photo), np.zeros((64, 64, 3), np.uint8))
    photo.chmod(0)
    r = cli("run", str(photo), "-o", str(tmp_path / "out"), "-q")
    assert r.returncode == 2 and "permission denied" in r.stderr and "Traceback" not in r.stderr


def test_permission_check_names_the_reason(tmp_path, monkeypatch):
    from person_cluster.config import SamplingConfig
    from person_cluster.sampling import discover_inputs

    photo = tmp_path / "secret.jpg"
    cv2.imwrite(str(photo), np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setattr(os, "access", lambda path, mode: str(path) != str(photo))
    items, skipped = discover_inputs([str(photo)], SamplingConfig())
    assert not items and skipped[0].reason == "permission denied"


@pytest.mark.pipeline
def test_video_container_with_no_frames(tmp_path):
    path = tmp_path / "nothing.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    writer.release()
    r = cli("run", str(path), "-o", str(tmp_path / "out"), "-q")
    assert r.returncode == 2 and "nothing.mp4" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2


@pytest.mark.pipeline
def test_input_without_faces_gives_empty_valid_outputs(tmp_path):
    video = write_video(tmp_path / "blank.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 20, fps=10)
    cv2.imwrite(str(tmp_path / "wall.jpg"), np.full((100, 100, 3), 200, np.uint8))
    out = tmp_path / "out"
    r = cli("run", str(video), str(tmp_path / "wall.jpg"), "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr
    assert "no faces found" in r.stdout
    m = json.loads((out / "manifest.json").read_text())
    assert m["faces"] == [] and m["clusters"] == [] and len(m["frames"]) == 3
    assert (out / "annotations" / "classes.txt").read_text() == ""
    for f in m["frames"]:
        assert (out / f["labels"]).read_text() == "" and (out / f["image"]).is_file()


def test_names_cannot_escape_out():
    for hostile in ["../../etc/passwd", "/etc/passwd", "a\x00b", "..", ".", "CON", "nul.txt", "com1", "a/../../b",
                    "C:\\Windows\\system32", "\u202eevil", " "]:
        name = safe_name(hostile)
        assert name and "/" not in name and "\\" not in name and "\x00" not in name and name not in (".", "..")
        assert name.split(".")[0].lower() not in ("con", "nul", "com1")
        assert (Path("/out") / name).resolve().parent == Path("/out")
    stem = frame_stem("../../x/../../etc/passwd.mp4", 3)
    assert "/" not in stem and stem.endswith("_f000003")
    assert frame_stem("a/clip.mp4", 1) != frame_stem("b/clip.mp4", 1)  # same file name, different folders
    assert cluster_folder(-1) == "unassigned" and cluster_folder(7) == "person_007"


# --- interrupted runs ----------------------------------------------------------------------------------------


PHOTOS = 120  # enough that the run is far from done when it is interrupted: extraction takes seconds, not one


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    need(LFW)
    src = tmp_path_factory.mktemp("kill") / "photos"
    for person in ["Colin_Powell", "Serena_Williams", "Gloria_Macapagal_Arroyo", "Tony_Blair"]:
        (src / person).mkdir(parents=True)
        for f in sorted((LFW / person).glob("*.jpg"))[: PHOTOS // 4]:
            (src / person / f.name).write_bytes(f.read_bytes())
    return src


def _start_and_stop(args: list[str], out: Path, sig: int, after_frames: int) -> subprocess.Popen:
    """Start a run in its own process group and send ``sig`` to the whole group once some frames are committed."""
    # A shell starts background jobs with SIGINT ignored, the child inherits that and Python then installs no
    # KeyboardInterrupt handler (pytest run as `... &` would see the run finish). A handler of our own in this
    # process is not inherited: exec gives the child SIGINT's default.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([*PY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    deadline = time.monotonic() + 300
    while frames_committed(out) < after_frames:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, sig) if sig == signal.SIGKILL else proc.send_signal(sig)
    return proc


@pytest.mark.slow
def test_sigkill_then_rerun_gives_the_same_manifest_as_one_clean_run(photo_folder, tmp_path):
    clean = tmp_path / "clean"
    again = tmp_path / "again"
    # queue_frames=1: frames are committed a few at a time, so the kill lands mid-run.
    base = ["-q", "--set", "runtime.workers=2", "--set", "runtime.queue_frames=1"]
    assert cli("run", str(photo_folder), "-o", str(clean), *base).returncode == 0
    # Determinism: a second clean run writes a byte-identical manifest (timestamps live in run.json).
    assert cli("run", str(photo_folder), "-o", str(again), *base).returncode == 0
    assert (clean / "manifest.json").read_bytes() == (again / "manifest.json").read_bytes()

    killed = tmp_path / "killed"
    args = ["run", str(photo_folder), "-o", str(killed), *base]
    proc = _start_and_stop(args, killed, signal.SIGKILL, after_frames=6)
    proc.wait(timeout=30)
    done_before = frames_committed(killed)
    assert 6 <= done_before < PHOTOS and not (killed / "manifest.json").exists()
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert (killed / "manifest.json").read_bytes() == (clean / "manifest.json").read_bytes()
    assert not list(killed.glob(".staging-*")) and not list(killed.rglob("*.tmp"))


@pytest.mark.slow
def test_ctrl_c_stops_within_seconds_and_the_rerun_resumes(photo_folder, tmp_path):
    out = tmp_path / "out"
    # queue_frames=1: frames are committed two at a time, so most of the run is still ahead when we interrupt.
    args = ["run", str(photo_folder), "-o", str(out), "-q", "--set", "runtime.queue_frames=1",
            "--set", "runtime.workers=2"]
    proc = _start_and_stop(args, out, signal.SIGINT, after_frames=4)
    stopped = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - stopped < 10
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    kept = frames_committed(out)
    assert kept >= 4
    r = cli(*args[:-2], "--set", "runtime.workers=1")  # resume with another worker count: still the same result
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert len(m["frames"]) == PHOTOS and all(i["status"] == "done" for i in m["inputs"])


def test_what_a_killed_run_left_half_written_is_removed_on_the_next_run(tmp_path):
    """SIGKILL can land while a frame is being written (write_atomic's temporary file) or outputs are staged."""
    from person_cluster.api import prepare_out

    out = tmp_path / "out"
    (out / "frames").mkdir(parents=True)
    (out / "features.sqlite").write_bytes(b"")  # a run of ours
    (out / "frames" / "clip-1234_f000006.jpg").write_bytes(b"jpg")
    (out / "frames" / ".clip-1234_f000012.jpg.k2j4.tmp").write_bytes(b"half")
    (out / ".staging-abc" / "people").mkdir(parents=True)
    prepare_out(out, overwrite=False)
    assert sorted(p.name for p in out.rglob("*")) == ["clip-1234_f000006.jpg", "features.sqlite", "frames"]
