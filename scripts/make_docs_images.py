"""Regenerate the README's pictures in docs/img/ with the project's own tools, from a shared clip.

    python scripts/make_docs_images.py [--video CLIP.mp4] [--truth CLIP.truth.csv] [--dest docs/img] [--keep OUT]

Runs the default pipeline on the clip into a temporary OUT, then writes:

- ``timeline.png``: OUT/timelines/<clip>.png as the run drew it (people by their folders, person_000, ...);
- ``review.png``: the review page of the person with the most screen time, in headless Chromium (Debian's
  chromium and chromedriver, driven by Selenium as tests/test_review.py does), with the player seeked to one of
  their appearances and the face's box drawn. The people are named first, as a user would on that page (here
  from the clip's truth file, through the Decisions API the page calls; without a truth file they keep their
  folder names).

Both are reduced to a 256-colour palette so that each stays under 150 KB. About 20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "testdata"
CLIP = SHARED / "videos" / "friends_kitchen_clip.mp4"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WINDOW = (1280, 900)  # the browser's window: the person's page with the player beside their appearances
WIDTH = 1000  # the screenshot's width in docs/img (pixels); the timeline keeps the width it was drawn at


def name_from_truth(out: Path, truth: Path) -> dict[str, str]:
    """Name each cluster after the identity most of its scored faces have in ``truth``: {folder: name}."""
    from person_cluster.evaluation import CsvTruth
    from person_cluster.layout import read_manifest
    from person_cluster.records import FrameInfo
    from person_cluster.review import Decisions, face_key

    manifest = read_manifest(out)
    faces = manifest["faces"]
    sampled = [FrameInfo(f["source"], f["frame"], f["time_s"], f["width"], f["height"]) for f in manifest["frames"]]
    bboxes = np.array([f["bbox"] for f in faces], np.int64).reshape(-1, 4)
    match = CsvTruth(truth).match([f["source"] for f in faces], [f["frame"] for f in faces], bboxes, sampled)
    votes: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for i, identity in zip(match.faces.tolist(), match.identities):
        votes[faces[i]["cluster"]][identity] += 1
    named = {}
    with Decisions(out) as decisions:
        for cluster in manifest["clusters"]:
            if cluster["id"] in votes:
                name = votes[cluster["id"]].most_common(1)[0][0].capitalize()
                keys = [face_key(f["source"], f["frame"], f["bbox"]) for f in faces if f["cluster"] == cluster["id"]]
                decisions.name(keys, name)
                named[Path(cluster["folder"]).name] = name
    return named


def save_small(image: Image.Image, path: Path, width: int | None = None) -> int:
    """``image`` scaled down to ``width`` (if wider) and reduced to a 256-colour palette, as PNG; returns its size in bytes."""
    image = image.convert("RGB")
    if width and image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    return path.stat().st_size


def screenshot_review(out: Path, path: Path) -> None:
    """The review page of the first-ranked person, the player seeked to their third appearance; cropped below
    the player and two rows of appearances."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from person_cluster.review.server import make_server

    server, app = make_server(out)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    wait = WebDriverWait(driver, 30)
    try:
        url = f"http://127.0.0.1:{app.port}/"
        driver.get(url)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#people .card"))
        first = driver.find_element(By.CSS_SELECTOR, "#people .card").get_attribute("data-key")
        driver.get(f"{url}#/p/{first}")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#appearances .appearance img.thumb"))
        cards = driver.find_elements(By.CSS_SELECTOR, "#appearances .appearance")
        cards[min(2, len(cards) - 1)].find_element(By.CSS_SELECTOR, "img.thumb").click()
        wait.until(lambda d: d.execute_script(
            "const v = document.getElementById('player'); return v.readyState >= 2 && !v.seeking;"))
        wait.until(lambda d: d.find_element(By.ID, "overlay").is_displayed())
        # Every thumbnail loaded, so that none is blank in the picture.
        wait.until(lambda d: d.execute_script(
            "return [...document.images].every(i => i.complete && (i.naturalWidth > 0 || !i.src));"))
        time.sleep(0.5)
        bottom = driver.execute_script(  # below the player and the first two rows of appearances
            "const cards = [...document.querySelectorAll('#appearances .appearance')].slice(0, 8);"
            "const panel = document.getElementById('player-panel');"
            "return Math.max(panel.getBoundingClientRect().bottom, ...cards.map(c => c.getBoundingClientRect().bottom));")
        driver.save_screenshot(str(path))
        ratio = driver.execute_script("return window.devicePixelRatio;") or 1
        with Image.open(path) as image:
            image.crop((0, 0, image.width, min(image.height, round((bottom + 8) * ratio)))).save(path)
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=CLIP)
    p.add_argument("--truth", type=Path, help="CSV truth to name the people by (default: the clip's, if shared)")
    p.add_argument("--dest", type=Path, default=REPO / "docs" / "img")
    p.add_argument("--keep", type=Path, help="copy the run's OUT here (it is deleted otherwise)")
    args = p.parse_args(argv)
    truth = args.truth or SHARED / "truth" / f"{args.video.stem}.truth.csv"
    missing = [str(x) for x in (args.video, CHROMIUM, CHROMEDRIVER) if not Path(x).exists()]
    if missing:
        print(f"make_docs_images: missing {', '.join(missing)}", file=sys.stderr)
        return 2

    from person_cluster import api
    from person_cluster.config import Config

    started = time.perf_counter()
    args.dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        manifest = api.run([str(args.video.resolve())], out, Config(), progress=False)
        timeline = out / manifest["timelines"][0]["image"]
        print(f"timeline.png: {save_small(Image.open(timeline), args.dest / 'timeline.png'):,} bytes")
        # Named on the page only: `cluster` is not run after naming, so the timeline keeps the run's folder names
        # (re-clustering a named run currently folds each named person's tracks into one appearance).
        if truth.is_file():
            print("named:", ", ".join(f"{k} = {v}" for k, v in name_from_truth(out, truth).items()))
        shot = Path(tmp) / "review.png"
        screenshot_review(out, shot)
        print(f"review.png: {save_small(Image.open(shot), args.dest / 'review.png', WIDTH):,} bytes")
        if args.keep:
            shutil.copytree(out, args.keep, dirs_exist_ok=True)
    print(f"wrote {args.dest} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
