"""How fast the review page is in headless Chromium: the people grid, and a person's page with 5,000 faces.

    python evaluation/benchmark_review.py [--out evaluation/work/lfw_cf] [--faces 5000] [--repeat 5]

OUT is a finished run (default: the LFW run that benchmark_quality.py makes). The biggest clusters are named as one
person until it holds ``--faces`` faces, in a decisions file made for the benchmark and removed after it (an OUT
that already has decisions is refused). Measured from navigation to: the grid's cards in the page; a person's
first appearances in the page with every thumbnail in the first screen loaded; and every appearance of the person
in the page (the page loads 200 at a time: "more appearances" is clicked until all are there; on LFW's photos
each face is an appearance). Medians of ``--repeat``. Then bursts of 32 requests at once over HTTP (the people,
the person's first page, thumbnails), ``--repeat`` rounds: the time each took to be answered.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from person_cluster.review import DECISIONS_NAME, Decisions, face_key
from person_cluster.review.server import make_server

_COUNT = "return document.querySelectorAll('#appearances .appearance').length;"
_VISIBLE_LOADED = """
const faces = document.querySelectorAll('#appearances .appearance img.thumb');
if (!faces.length) return false;
return [...faces].filter(i => i.getBoundingClientRect().top < innerHeight).every(i => i.complete && i.naturalWidth);
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "evaluation" / "work" / "lfw_cf"))
    ap.add_argument("--faces", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    out = Path(args.out)
    if (out / DECISIONS_NAME).exists():
        sys.exit(f"{out} has decisions of its own; use a copy")
    manifest = json.loads((out / "manifest.json").read_text())
    members: list[str] = []
    for c in sorted(manifest["clusters"], key=lambda c: -c["size"]):
        members += [face_key(f["source"], f["frame"], f["bbox"]) for f in manifest["faces"] if f["cluster"] == c["id"]]
        if len(members) >= args.faces:
            break
    members = members[:args.faces]
    from test_review import _browser  # the tests' headless Chromium set-up

    try:
        with Decisions(out) as d:
            person = d.name(members, "Everyone")
        server, app = make_server(out)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{app.port}/"
        driver = _browser()
        grid, first, everything, burst = [], [], [], []
        try:
            for _ in range(args.repeat):
                driver.get("about:blank")
                t = time.perf_counter()
                driver.get(url)
                while not driver.find_elements("css selector", "#people .card"):
                    time.sleep(0.005)
                grid.append(time.perf_counter() - t)
                driver.get("about:blank")
                t = time.perf_counter()
                driver.get(f"{url}#/p/p{person}")
                while not driver.execute_script(_VISIBLE_LOADED):
                    time.sleep(0.005)
                first.append(time.perf_counter() - t)
                while (n := driver.execute_script(_COUNT)) < len(members):
                    driver.execute_script("const b = document.getElementById('more'); if (b && !b.disabled) b.click();")
                    while driver.execute_script(_COUNT) == n:
                        time.sleep(0.005)
                everything.append(time.perf_counter() - t)
            burst = _bursts(app, f"p{person}", args.repeat)
        finally:
            driver.quit()
            server.shutdown()
            server.server_close()
    finally:
        for suffix in ("", "-wal", "-shm"):
            (out / f"{DECISIONS_NAME}{suffix}").unlink(missing_ok=True)
    n_people = len(manifest["clusters"])
    print(f"# {out}: {len(manifest['faces'])} faces, {n_people} clusters; one person named with {len(members)} faces; "
          f"headless Chromium, medians of {args.repeat}")
    print(f"grid shown: {statistics.median(grid):.2f} s")
    print(f"person page, first screen of appearances loaded: {statistics.median(first):.2f} s")
    print(f"person page, all {len(members)} faces' appearances in the page: {statistics.median(everything):.2f} s")
    burst.sort()
    print(f"bursts of 32 requests at once, {len(burst)} requests: median {statistics.median(burst) * 1000:.0f} ms, "
          f"p99 {burst[int(len(burst) * 0.99)] * 1000:.0f} ms, max {burst[-1] * 1000:.0f} ms")


def _bursts(app, person: str, rounds: int) -> list[float]:
    """Seconds each request of ``rounds`` bursts of 32 at once took to be answered."""
    people = json.loads(app.handle("GET", "/api/people", {}).body)["people"]
    targets = ["/api/people", f"/api/people/{person}?offset=0&limit=200",
               *[f"/files/{p['cover']}" for p in people[:30]]]
    barrier = threading.Barrier(32)

    def one(k: int) -> float:
        barrier.wait()
        t = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
        conn.request("GET", targets[k % len(targets)])
        r = conn.getresponse()
        r.read()
        conn.close()
        if r.status != 200:
            raise RuntimeError(f"{targets[k % len(targets)]}: {r.status}")
        return time.perf_counter() - t

    times: list[float] = []
    with ThreadPoolExecutor(32) as pool:
        for _ in range(rounds):
            times += pool.map(one, range(32))
    return times


if __name__ == "__main__":
    main()
