"""The review page: its rules as requests (loopback only, files inside OUT only, a token and an Origin for every
change, a 4xx and one line for anything malformed), and the whole flow in a real browser (Debian's chromium)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import get as _get  # a GET, with an input file read as the server would stream it

from person_cluster import api
from person_cluster.config import Config
from person_cluster.export import export
from person_cluster.review import face_key
from person_cluster.review.server import ReviewApp, make_server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = pytest.mark.pipeline  # every test here reviews a run of a real clip (tests/test_review_requests.py: fast)


_RUNS: dict[str, Path] = {}


def _run(name: str, tmp_path_factory) -> Path:
    """A default run (1 frame/s) of a shared clip, made once per test session and copied for each test."""
    from conftest import VIDEOS, need

    if name not in _RUNS:
        out = tmp_path_factory.mktemp(name) / "out"
        api.run([str(need(VIDEOS) / name)], out, Config(), progress=False)
        _RUNS[name] = out
    return _RUNS[name]


@pytest.fixture(params=["friends_kitchen_clip.mp4", "qengineering_Norton_A.mp4"])
def out(request, tmp_path_factory, tmp_path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(_run(request.param, tmp_path_factory), copy)
    return copy


@pytest.fixture
def kitchen(tmp_path_factory, tmp_path) -> Path:
    """A copy of the friends_kitchen run alone, for tests that need one clip, not both."""
    copy = tmp_path / "out"
    shutil.copytree(_run("friends_kitchen_clip.mp4", tmp_path_factory), copy)
    return copy




def _act(app: ReviewApp, body, token: str | None = None, origin: str | None = None):
    headers = {"X-Review-Token": app.token if token is None else token}
    if origin:
        headers["Origin"] = origin
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return app.handle("POST", "/api/action", headers, raw)


def test_the_page_counts_screen_time_as_the_cast_does(out):
    """Before any decision the page's people are the clusters: their screen time and on-screen spans must be the
    cast's (cast.csv, the manifest, the timelines), not a second estimate."""
    from person_cluster.review import Decisions
    from person_cluster.review.view import ReviewView

    manifest = json.loads((out / "manifest.json").read_text())
    view = ReviewView(out)
    with Decisions(out) as decisions:
        groups = view.groups(decisions)
    cast = {f"c{m['cluster']}": m for m in manifest["cast"]}
    assert set(cast) <= set(groups) and len(cast) >= 4
    for key, member in cast.items():
        assert round(view.screen_time(groups[key]), 2) == member["screen_time_s"]
        (line,) = view.timeline(groups[key])
        assert line["spans"][0][0] == pytest.approx(member["first_time_s"])
    ranked = [k for k in groups if k in cast]
    assert ranked == [f"c{m['cluster']}" for m in manifest["cast"]]  # the same order as the cast


def test_naming_people_changes_neither_their_screen_time_nor_their_appearances_nor_their_numbers(out):
    """A name is a decision that joins a person's faces for clustering; the cast must still count their tracks as
    the tracker linked them (it once counted the joined group as one appearance: Rachel 31.0 s -> 4.6 s)."""
    from person_cluster.review import Decisions

    before = json.loads((out / "manifest.json").read_text())
    with Decisions(out) as d:
        for k, member in enumerate(before["cast"][:2]):
            faces = [face_key(f["source"], f["frame"], f["bbox"]) for f in before["faces"]
                     if f["cluster"] == member["cluster"]]
            d.name(faces, f"Person {k}")
    after = api.cluster_out(out)
    assert len(after["tracks"]) == len(before["tracks"])
    named = {c["id"]: c["name"] for c in after["clusters"] if c["name"]}
    assert sorted(named.values()) == ["Person 0", "Person 1"]
    for member in before["cast"][:2]:
        (row,) = [r for r in after["cast"] if r["cluster"] == member["cluster"]]  # the same number
        assert (row["screen_time_s"], row["appearances"], row["faces"]) == (
            member["screen_time_s"], member["appearances"], member["faces"])
        assert row["folder"] == named[member["cluster"]].replace(" ", "_")
    assert [r["cluster"] for r in after["cast"]] == [r["cluster"] for r in before["cast"]]


def test_hostile_requests_get_a_4xx_and_change_nothing(out):
    app = ReviewApp(out, port=5555)
    people = json.loads(app.handle("GET", "/api/people", {}).body)["people"]
    key = people[0]["key"]
    (out / "people" / "escape.jpg").symlink_to("/etc/hostname")
    refused = {
        "path climbing out": app.handle("GET", "/files/people/../../../etc/hostname", {}),
        "encoded slashes": app.handle("GET", "/files/..%2F..%2Fetc%2Fhostname", {}),
        "absolute path": app.handle("GET", "/files//etc/hostname", {}),
        "not an image": app.handle("GET", "/files/features.sqlite", {}),
        "symlink leading out": app.handle("GET", "/files/people/escape.jpg", {}),
        "other static file": app.handle("GET", "/static/../server.py", {}),
        "no token": _act(app, {"action": "undo"}, token=""),
        "wrong token": _act(app, {"action": "undo"}, token="x" * 32),
        "other origin": _act(app, {"action": "rename", "person": key, "name": "x"}, origin="http://evil.example"),
        "not JSON": _act(app, b"{rename"),
        "no action": _act(app, {"person": key}),
        "unknown action": _act(app, {"action": "drop_table"}),
        "unknown person": _act(app, {"action": "rename", "person": "c999", "name": "x"}),
        "empty name": _act(app, {"action": "rename", "person": key, "name": "   "}),
        "name not text": _act(app, {"action": "rename", "person": key, "name": ["a"]}),
        "unknown face": _act(app, {"action": "not_a_face", "faces": ["nope"]}),
        "faces not a list": _act(app, {"action": "not_a_face", "faces": "all"}),
        "merge with itself": _act(app, {"action": "merge", "keep": key, "other": key}),
        "bad paging": app.handle("GET", f"/api/people/{key}?offset=x", {}),
        "unknown route": app.handle("DELETE", "/api/people", {}),
    }
    for what, r in refused.items():
        assert 400 <= r.status < 500, (what, r.status)
        message = json.loads(r.body)["error"]
        assert message and "\n" not in message and "Traceback" not in message, what
    assert json.loads(app.handle("GET", "/api/people", {}).body)["people"] == people  # nothing changed
    ok = app.handle("GET", f"/files/{people[0]['cover']}", {})
    assert ok.status == 200 and ok.body[:2] == b"\xff\xd8"
    page = app.handle("GET", "/", {})
    assert page.status == 200 and app.token.encode() in page.body


def test_the_server_listens_on_loopback_only(out):
    server, app = make_server(out)
    try:
        assert server.server_address[0] == "127.0.0.1" and app.port == server.server_address[1] > 0
    finally:
        server.server_close()


def _page(app: ReviewApp, key: str, **query) -> dict:
    return json.loads(_get(app, f"/api/people/{key}?" + "&".join(f"{k}={v}" for k, v in query.items())).body)


def _appearances(app: ReviewApp, key: str) -> list[dict]:
    """Every appearance of a person, page by page, each with its faces."""
    items: list[dict] = []
    while True:
        page = _page(app, key, offset=len(items), limit=7)
        items += page["items"]
        if len(items) >= page["appearances"] or not page["items"]:
            break
    for a in items:
        a["keys"] = [f["key"] for f in json.loads(_get(app, f"/api/people/{key}/appearances/{a['track']}").body)["items"]]
    return items


def test_a_person_is_shown_as_appearances_one_per_track(kitchen):
    """A person's page pages through their appearances: one per track, in the order of their first face, with its
    video, time span and face count, and its faces (with what the player needs) on request; a filter by video."""
    app = ReviewApp(kitchen)
    manifest = json.loads((kitchen / "manifest.json").read_text())
    (video,) = [k for k, i in enumerate(manifest["inputs"]) if i["kind"] == "video"]
    person = json.loads(_get(app, "/api/people").body)["people"][0]
    appearances = _appearances(app, person["key"])
    by_key = {face_key(f["source"], f["frame"], f["bbox"]): f for f in manifest["faces"]}
    sizes = {(fr["source"], fr["frame"]): (fr["width"], fr["height"]) for fr in manifest["frames"]}
    keys = [k for a in appearances for k in a["keys"]]
    assert len(keys) == len(set(keys)) == person["faces"] and 1 < len(appearances) < person["faces"]
    assert sorted(keys, key=list(by_key).index) == keys  # appearances in time order, faces in time order
    tracks = {a["track"] for a in appearances}
    assert len(tracks) == len(appearances)
    for a in appearances:
        faces = [by_key[k] for k in a["keys"]]
        assert {f["track"] for f in faces} == {a["track"]} and a["faces"] == len(faces)
        assert (a["start_s"], a["end_s"]) == (faces[0]["time_s"], faces[-1]["time_s"])
        assert a["input"] == video and a["source"] == "friends_kitchen_clip.mp4" and not a["photo"]
        assert a["face"]["key"] in a["keys"]
        whole = [f for f in manifest["faces"] if f["track"] == a["track"]]
        assert len(whole) == len(faces)  # no decisions yet: an appearance is its whole track
    face = json.loads(_get(app, f"/api/people/{person['key']}/appearances/{appearances[0]['track']}").body)["items"][0]
    f = by_key[face["key"]]
    assert (face["bbox"], face["time_s"], face["input"]) == (f["bbox"], f["time_s"], video)
    assert (face["width"], face["height"]) == sizes[(f["source"], f["frame"])] == (1280, 720)
    first = _page(app, person["key"])
    assert first["videos"] == [{"value": str(video), "label": "friends_kitchen_clip.mp4", "faces": person["faces"]}]
    assert _page(app, person["key"], video=video)["appearances"] == len(appearances)
    assert _page(app, person["key"], video=video + 1)["appearances"] == 0
    assert _page(app, person["key"], video="photos")["items"] == []
    assert "timeline" not in _page(app, person["key"], offset=1)  # what the top of the page shows: first page only


def test_whole_appearances_are_one_action_and_one_undo(kitchen):
    """Move, split, not-a-face and hide take whole appearances (and single faces with them) in one transaction
    and one step of undo; a track the user split shows as an appearance in each person."""
    from person_cluster.review import Decisions

    app = ReviewApp(kitchen)

    def state() -> dict:
        with Decisions(kitchen) as d:
            return {"assigned": d.assigned(), "not_faces": d.not_faces(), "people": d.people(),
                    "history": d.db.execute("SELECT count(*) FROM history").fetchone()[0]}

    people = json.loads(_get(app, "/api/people").body)["people"]
    a_key, b_key = people[0]["key"], people[1]["key"]
    apps = _appearances(app, a_key)
    two = [a for a in apps if a["faces"] > 1][:2]
    loose = next(a for a in apps if a not in two and a["faces"] > 1)
    before = state()
    moves = {
        "move": {"action": "move", "person": a_key, "appearances": [x["track"] for x in two],
                 "faces": [loose["keys"][0]], "target": b_key},
        "split": {"action": "move", "person": a_key, "appearances": [two[0]["track"]], "target": None},
        "not_a_face": {"action": "not_a_face", "person": a_key, "appearances": [two[0]["track"]]},
        "hide": {"action": "hide", "person": a_key, "appearances": [str(two[0]["track"])]},
    }
    for what, request in moves.items():
        r = _act(app, request)
        assert r.status == 200, (what, r.body)
        after = state()
        assert after["history"] == before["history"] + 1, what  # one step of undo
        faces = [k for x in two for k in x["keys"]] + [loose["keys"][0]] if what == "move" else two[0]["keys"]
        if what == "not_a_face":
            assert set(faces) <= after["not_faces"]
        else:
            owner = {after["assigned"][k] for k in faces}
            assert len(owner) == 1, what
            assert after["people"][owner.pop()].hidden == (what == "hide")
        groups = app.view.current()
        if what == "move":
            moved = groups[f"p{json.loads(r.body)['person']}"]
            assert len(moved.faces) == people[1]["faces"] + len(faces)
            # the rest of the loose face's track is still an appearance of the first person, one face shorter
            rest = app.view.find_appearance(groups[a_key], loose["track"])
            assert rest is not None and len(rest) == loose["faces"] - 1
        assert json.loads(_act(app, {"action": "undo"}).body)["undone"] == ("hide" if what == "hide" else
                                                                             "not_a_face" if what == "not_a_face"
                                                                             else "move")
        assert state() == before, what
    refused = {
        "unknown appearance": {"action": "move", "person": a_key, "appearances": [10 ** 9], "target": None},
        "appearance of another person": {"action": "move", "person": b_key, "appearances": [two[0]["track"]],
                                         "target": None},
        "appearances not a list": {"action": "not_a_face", "person": a_key, "appearances": two[0]["track"]},
        "empty appearances": {"action": "not_a_face", "person": a_key, "appearances": []},
        "appearance not a number": {"action": "not_a_face", "person": a_key, "appearances": ["1; DROP"]},
        "appearance a bool": {"action": "not_a_face", "person": a_key, "appearances": [True]},
        "appearances without a person": {"action": "not_a_face", "appearances": [two[0]["track"]]},
        "one unknown among them": {"action": "not_a_face", "person": a_key,
                                   "appearances": [two[0]["track"], 10 ** 9]},
    }
    for what, request in refused.items():
        r = _act(app, request)
        assert r.status == 400 and "\n" not in json.loads(r.body)["error"], what
    assert state() == before
    for target in (f"/api/people/{a_key}/appearances/x", f"/api/people/{a_key}/appearances/{10 ** 9}",
                   f"/api/people/c999/appearances/{two[0]['track']}", f"/api/people/{a_key}/appearances/1?limit=x"):
        r = _get(app, target)
        assert 400 <= r.status < 500 and json.loads(r.body)["error"], target


def test_photos_are_one_face_appearances_shown_whole(lfw12_run, tmp_path):
    """A photo is an appearance of its one face, marked as a photo, with the photo itself served by number (the
    page shows it with the box instead of a video); the filter has one entry for all photos."""
    out = tmp_path / "out"
    shutil.copytree(lfw12_run, out)
    app = ReviewApp(out)
    manifest = json.loads((out / "manifest.json").read_text())
    person = json.loads(_get(app, "/api/people").body)["people"][0]
    page = _page(app, person["key"])
    assert page["appearances"] == person["faces"] == len(page["items"])
    assert page["videos"] == [{"value": "photos", "label": "photos", "faces": person["faces"]}]
    assert _page(app, person["key"], video="photos")["appearances"] == person["faces"]
    for a in page["items"]:
        assert a["photo"] and a["faces"] == 1 and a["start_s"] is None
        source = manifest["inputs"][a["input"]]
        assert source["kind"] == "image" and Path(source["source"]).name == a["source"]
        photo = _get(app, f"/input/{a['input']}")
        assert photo.status == 200 and photo.content_type == "image/jpeg"
        assert photo.body == Path(source["source"]).read_bytes()


def test_the_page_sees_decisions_made_elsewhere_at_once(kitchen, monkeypatch):
    """The page rebuilds its people only when the decisions changed, and a change by another connection (another
    process, ``person-cluster name``) is seen by the next request. A write that waits too long for another
    writer's lock is a 503 with one line."""
    import sqlite3

    from person_cluster.review import Decisions

    app = ReviewApp(kitchen)
    assert app.view.current() is app.view.current()  # nothing changed: not rebuilt
    person = json.loads(_get(app, "/api/people").body)["people"][0]
    faces = [app.view.keys[i] for i in app.view.current()[person["key"]].faces]
    with Decisions(kitchen) as d:
        d.name(faces, "Named elsewhere")
    named = {p["label"]: p for p in json.loads(_get(app, "/api/people").body)["people"]}["Named elsewhere"]
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, **{**k, "timeout": 0.1}))
    with Decisions(kitchen) as holder:
        holder.db.execute("BEGIN IMMEDIATE")
        r = _act(app, {"action": "rename", "person": named["key"], "name": "x"})
        holder.db.execute("ROLLBACK")
    assert r.status == 503 and "try again" in json.loads(r.body)["error"]


def _video_of(out: Path) -> tuple[int, Path]:
    manifest = json.loads((out / "manifest.json").read_text())
    (index,) = [k for k, i in enumerate(manifest["inputs"]) if i["kind"] == "video"]
    return index, Path(manifest["inputs"][index]["source"])


def test_a_moved_video_is_a_404_with_one_line_and_the_page_still_works(kitchen, tmp_path):
    index, path = _video_of(kitchen)
    copy = tmp_path / "clip.mp4"
    shutil.copyfile(path, copy)
    manifest = (kitchen / "manifest.json").read_text().replace(json.dumps(str(path)), json.dumps(str(copy)))
    (kitchen / "manifest.json").write_text(manifest)
    app = ReviewApp(kitchen)
    assert _get(app, f"/input/{index}").status == 200
    copy.chmod(0)
    if os.geteuid() != 0:  # root reads it anyway
        r = _get(app, f"/input/{index}")
        assert r.status == 404 and "cannot read clip.mp4" in json.loads(r.body)["error"]
    copy.unlink()
    r = _get(app, f"/input/{index}", Range="bytes=0-1")
    message = json.loads(r.body)["error"]
    assert r.status == 404 and message.startswith("cannot read clip.mp4") and "\n" not in message
    copy.mkdir()  # a folder where the video was
    assert _get(app, f"/input/{index}").status == 404
    people = json.loads(_get(app, "/api/people").body)["people"]
    assert people and _page(app, people[0]["key"])["items"]


def _server(out: Path):
    server, app = make_server(out)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, app


def test_the_http_server_streams_ranges_and_sends_the_policy(kitchen):
    """The same answers over real HTTP, through the server's streaming of the file."""
    server, app = _server(kitchen)
    index, path = _video_of(kitchen)
    size = path.stat().st_size
    try:
        def get(target: str, method: str = "GET", **headers: str):
            conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
            conn.request(method, target, headers=headers)
            r = conn.getresponse()
            body = r.read()
            conn.close()
            return r, body

        r, body = get(f"/input/{index}")
        assert r.status == 200 and body == path.read_bytes() and r.getheader("Content-Length") == str(size)
        assert "media-src 'self'" in r.getheader("Content-Security-Policy")
        r, body = get(f"/input/{index}", Range="bytes=1000-1999")
        assert r.status == 206 and r.getheader("Content-Range") == f"bytes 1000-1999/{size}"
        assert body == path.read_bytes()[1000:2000]
        r, body = get(f"/input/{index}", "HEAD", Range="bytes=-10")
        assert r.status == 206 and r.getheader("Content-Length") == "10" and body == b""
        r, body = get(f"/input/{index}", Range="bytes=999999999999999999999-")
        assert r.status == 416 and r.getheader("Content-Range") == f"bytes */{size}" and json.loads(body)["error"]
        r, body = get(f"/input/{index}", Range="bytes=" + "1" * 60000 + "-")
        assert r.status == 416
        r, body = get("/files/people/../../../etc/hostname")
        assert r.status == 404
    finally:
        server.shutdown()
        server.server_close()


def test_a_burst_of_32_requests_at_once_is_answered_without_a_stall(kitchen):
    """32 clients at once, 4 rounds, a page's mix (people, a person, thumbnails, the script, ranges of the video):
    every connection is accepted at once and every request answered. With socketserver's default listen backlog
    (5) connections of a burst wait for a SYN retransmit (1 s, then 3 s) or time out."""
    server, app = _server(kitchen)
    index, _ = _video_of(kitchen)
    people = json.loads(_get(app, "/api/people").body)["people"]
    thumbs = [p["cover"] for p in people]
    targets = ["/api/people", f"/api/people/{people[0]['key']}", "/static/app.js",
               *[f"/files/{t}" for t in thumbs], f"/input/{index}"]
    barrier = threading.Barrier(32)

    def client(k: int) -> tuple[float, float, int]:
        target = targets[k % len(targets)]
        barrier.wait()
        t = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
        conn.connect()
        connected = time.perf_counter() - t
        conn.request("GET", target, headers={"Range": f"bytes={k * 1000}-{k * 1000 + 65535}"}
                     if target.startswith("/input/") else {})
        r = conn.getresponse()
        r.read()
        conn.close()
        return connected, time.perf_counter() - t, r.status

    try:
        results = []
        with ThreadPoolExecutor(32) as pool:
            for _ in range(4):
                results += list(pool.map(client, range(32)))
    finally:
        server.shutdown()
        server.server_close()
    assert {status for _, _, status in results} <= {200, 206}
    slowest_connect = max(c for c, _, _ in results)
    slowest = max(d for _, d, _ in results)
    assert slowest_connect < 0.5, f"a connection waited {slowest_connect:.2f} s to be accepted"
    assert slowest < 5, f"a request took {slowest:.2f} s"


def _browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test needs {', '.join(missing)} (.ci/run installs them)")
        pytest.skip(f"browser test needs {', '.join(missing)}: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class _Review:
    """OUT's review page served for real and open in headless Chromium, with the steps the browser tests share."""

    def __init__(self, out: Path) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = _browser()  # first: a test skipped for want of a browser leaves no server running
        self.server, self.app = _server(out)
        self.url = f"http://127.0.0.1:{self.app.port}/"
        self.wait = WebDriverWait(self.driver, 20)

    def people(self) -> dict[str, dict]:
        return {p["label"]: p for p in json.loads(self.app.handle("GET", "/api/people", {}).body)["people"]}

    def open_person(self, key: str) -> None:
        """A fresh page load: nothing the previous page still had in flight can redraw this one."""
        from selenium.webdriver.common.by import By

        self.driver.get("about:blank")
        self.driver.get(f"{self.url}#/p/{key}")
        self.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#appearances .appearance"))

    def click(self, button: str, expect: str = "saved") -> None:
        """Click, and wait until the server has answered (the status line is cleared first, so the wait cannot
        be met by the previous action's answer)."""
        from selenium.webdriver.common.by import By

        driver = self.driver
        driver.execute_script("document.getElementById('status').textContent = '';")
        driver.find_element(By.ID, button).click()
        self.wait.until(lambda d: d.find_element(By.ID, "status").text == expect or "error" in
                        d.find_element(By.ID, "status").get_attribute("class"))
        assert "error" not in driver.find_element(By.ID, "status").get_attribute("class"), \
            driver.find_element(By.ID, "status").text
        time.sleep(0.3)  # the page reloads its data

    def close(self) -> None:
        self.driver.quit()
        self.server.shutdown()
        self.server.server_close()


def test_review_in_a_browser_then_cluster_and_export_follow_the_decisions(kitchen, tmp_path):
    """The whole flow in headless Chromium on friends_kitchen (H.264, which Debian's Chromium plays): name, merge,
    play an appearance (the player seeks to it and draws the face's box), move a whole appearance and undo it,
    split and mark single faces, move an appearance for good, a video that has moved; then `cluster` and
    `export` follow the decisions. Screenshots of the pages are left in the test's tmp_path."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    out = kitchen
    rachel_name = "Rachel <img src=x onerror=alert(1)>"
    page = _Review(out)
    app, url, driver, wait = page.app, page.url, page.driver, page.wait
    people, open_person, click = page.people, page.open_person, page.click

    def card(track: int):
        return driver.find_element(By.CSS_SELECTOR, f'#appearances .appearance[data-track="{track}"]')

    def seeked_to(t: float) -> bool:
        return driver.execute_script(
            "const v = document.getElementById('player');"
            "return v.readyState >= 2 && !v.seeking && Math.abs(v.currentTime - arguments[0]) < 0.5;", t)

    def box_shown() -> None:
        box = driver.find_element(By.ID, "overlay")
        video = driver.find_element(By.ID, "player").rect
        assert box.is_displayed() and box.rect["width"] > 5 and box.rect["height"] > 5
        assert video["x"] <= box.rect["x"] and box.rect["x"] + box.rect["width"] <= video["x"] + video["width"]
        assert video["y"] <= box.rect["y"] and box.rect["y"] + box.rect["height"] <= video["y"] + video["height"]

    try:
        driver.get(url)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#people .card")) >= 4)
        driver.save_screenshot(str(tmp_path / "grid.png"))
        start = people()
        ranked = list(start.values())
        # Rename two people (one with a name that must stay text), merge two.
        open_person(ranked[0]["key"])
        driver.find_element(By.ID, "name").clear()
        driver.find_element(By.ID, "name").send_keys(rachel_name)
        click("rename")
        open_person(ranked[1]["key"])
        driver.find_element(By.ID, "name").clear()
        driver.find_element(By.ID, "name").send_keys("Joey")
        click("rename")
        joey = people()["Joey"]
        open_person(joey["key"])
        Select(driver.find_element(By.ID, "target")).select_by_value(ranked[2]["key"])
        click("merge")
        rachel, joey = people()[rachel_name], people()["Joey"]
        open_person(rachel["key"])
        assert driver.find_element(By.ID, "title").text.startswith(rachel_name)
        assert not driver.find_elements(By.CSS_SELECTOR, "h1 img")  # shown as text, not HTML
        assert driver.find_elements(By.CSS_SELECTOR, "#timeline svg rect.on")  # when the person is on screen
        appearances = {a["track"]: a for a in _appearances(app, rachel["key"])}
        assert len(driver.find_elements(By.CSS_SELECTOR, "#appearances .appearance")) == len(appearances) >= 4
        # The player: an appearance's click seeks the video to it and draws the face's box over it; so does a
        # face's, once the appearance is opened.
        late = max(appearances.values(), key=lambda a: a["start_s"])
        assert late["start_s"] > 5
        card(late["track"]).find_element(By.CSS_SELECTOR, "img.thumb").click()
        wait.until(lambda d: seeked_to(late["start_s"]))
        box_shown()
        driver.save_screenshot(str(tmp_path / "player.png"))
        long = max(appearances.values(), key=lambda a: a["faces"])
        assert long["faces"] >= 3 and long is not late
        card(long["track"]).find_element(By.CSS_SELECTOR, "button.expand").click()
        wait.until(lambda d: len(card(long["track"]).find_elements(By.CSS_SELECTOR, ".faces .face")) == long["faces"])
        tiles = card(long["track"]).find_elements(By.CSS_SELECTOR, ".faces .face")
        tiles[-1].find_element(By.CSS_SELECTOR, "img").click()
        last = json.loads(_get(app, f"/api/people/{rachel['key']}/appearances/{long['track']}").body)["items"][-1]
        assert last["key"] == tiles[-1].get_attribute("data-key")
        wait.until(lambda d: seeked_to(last["time_s"]))
        box_shown()
        driver.save_screenshot(str(tmp_path / "faces.png"))
        # A whole appearance to Joey in one action, then undone in one.
        whole = next(a for a in appearances.values() if a["faces"] >= 2 and a not in (late, long))
        card(whole["track"]).find_element(By.CSS_SELECTOR, "input.pick").click()
        Select(driver.find_element(By.ID, "target")).select_by_value(joey["key"])
        click("move")
        now = people()
        assert now["Joey"]["faces"] == joey["faces"] + whole["faces"]
        assert now[rachel_name]["faces"] == rachel["faces"] - whole["faces"]
        click("undo", "undone: move")
        assert {k: people()[k]["faces"] for k in ("Joey", rachel_name)} == {"Joey": joey["faces"],
                                                                           rachel_name: rachel["faces"]}
        # Single faces: one split off, one marked as not a face.
        open_person(rachel["key"])
        card(long["track"]).find_element(By.CSS_SELECTOR, "button.expand").click()
        wait.until(lambda d: card(long["track"]).find_elements(By.CSS_SELECTOR, ".faces .face"))
        tiles = card(long["track"]).find_elements(By.CSS_SELECTOR, ".faces .face")
        split_key, notface_key = tiles[0].get_attribute("data-key"), tiles[1].get_attribute("data-key")
        tiles[0].find_element(By.CSS_SELECTOR, "input.pick").click()
        click("split")
        open_person(rachel["key"])
        card(long["track"]).find_element(By.CSS_SELECTOR, "button.expand").click()
        wait.until(lambda d: card(long["track"]).find_elements(By.CSS_SELECTOR, f'.face[data-key="{notface_key}"]'))
        card(long["track"]).find_element(By.CSS_SELECTOR, f'.face[data-key="{notface_key}"] input.pick').click()
        click("notface")
        # A whole appearance to Joey for good.
        open_person(rachel["key"])
        card(whole["track"]).find_element(By.CSS_SELECTOR, "input.pick").click()
        Select(driver.find_element(By.ID, "target")).select_by_value(joey["key"])
        click("move")
        # Reload: everything persisted.
        driver.get(url)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#people .card"))
        labels = [c.find_element(By.CSS_SELECTOR, ".name").text for c in driver.find_elements(By.CSS_SELECTOR, ".card")]
        assert rachel_name in labels and "Joey" in labels
        final = people()
        assert final["Joey"]["faces"] == ranked[1]["faces"] + ranked[2]["faces"] + whole["faces"]
        assert final[rachel_name]["faces"] == ranked[0]["faces"] - 2 - whole["faces"]
        decided = {label: _faces_of(app, p["key"]) for label, p in final.items() if p["name"]}
        assert set(whole["keys"]) <= set(decided["Joey"])
        # A video that has moved since the run: the player says so, the rest of the page works.
        index, _ = _video_of(out)
        app.view.inputs[index] = {**app.view.inputs[index], "source": str(tmp_path / "gone.mp4")}
        open_person(final[rachel_name]["key"])
        driver.find_element(By.CSS_SELECTOR, "#appearances .appearance img.thumb").click()
        wait.until(lambda d: d.find_element(By.ID, "player-message").is_displayed())
        assert driver.find_element(By.ID, "player-message").text.startswith("cannot read gone.mp4")
        assert not driver.find_element(By.ID, "overlay").is_displayed()
        driver.save_screenshot(str(tmp_path / "moved.png"))
    finally:
        page.close()
    # `cluster` again: every decided face is where the user put it (faces nobody decided may join the people they
    # resemble: names follow faces), the marked face is in no cluster, and export writes the clusters exactly.
    m = api.recluster(out)
    named = {c["name"]: c for c in m["clusters"] if c["name"]}
    cluster_of = {face_key(f["source"], f["frame"], f["bbox"]): f["cluster"] for f in m["faces"]}
    for label, faces in decided.items():
        assert label in named, label
        assert {cluster_of[k] for k in faces} == {named[label]["id"]}, label
    assert set(decided) == set(named) == {"Joey", "Rachel <img src=x onerror=alert(1)>"}
    assert cluster_of[notface_key] == -2 and sum(1 for c in cluster_of.values() if c == -2) == 1
    assert cluster_of[split_key] not in {named["Joey"]["id"], named["Rachel <img src=x onerror=alert(1)>"]["id"]}
    export(out, tmp_path / "folders", "folders")
    counts = {p.name: len(list(p.glob("*.jpg"))) for p in (tmp_path / "folders").iterdir()}
    assert counts == {Path(c["folder"]).name: c["size"] for c in m["clusters"]}
    assert counts["Joey"] >= len(decided["Joey"]) and "Rachel_img_src_x_onerror_alert_1" in counts
    export(out, tmp_path / "yolo", "yolo")
    names = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())["names"]
    assert {"Joey", "Rachel <img src=x onerror=alert(1)>"} <= set(names.values())
    labels = [line.split()[0] for p in (tmp_path / "yolo" / "labels").glob("*.txt") for line in p.read_text().splitlines()]
    assert len(labels) == len(m["faces"]) - 1  # every face but the one marked as not a face
    export(out, tmp_path / "named", "folders", named_only=True)
    assert sorted(p.name for p in (tmp_path / "named").iterdir()) == ["Joey", "Rachel_img_src_x_onerror_alert_1"]
    export(out, tmp_path / "named_yolo", "yolo", named_only=True)
    names = yaml.safe_load((tmp_path / "named_yolo" / "data.yaml").read_text())["names"]
    assert names == {0: "Joey", 1: "Rachel <img src=x onerror=alert(1)>", 2: "unassigned"} or \
        names == {0: "Rachel <img src=x onerror=alert(1)>", 1: "Joey", 2: "unassigned"}


def _faces_of(app: ReviewApp, key: str) -> list[str]:
    return [k for a in _appearances(app, key) for k in a["keys"]]


def _kitchen_part(tmp_path: Path, name: str, start_s: float, end_s: float) -> Path:
    """A part of the kitchen clip as a video of its own (640x360, 10 frames/s, H.264 with B-frames)."""
    import cv2
    from conftest import VIDEOS, need, write_h264

    from person_cluster.sampling.video import probe_video, read_video_frames

    source = str(need(VIDEOS) / "friends_kitchen_clip.mp4")
    info = probe_video(source)
    wanted = list(range(round(start_s * info.fps), round(end_s * info.fps), 3))
    frames = [cv2.resize(f.image, (640, 360), interpolation=cv2.INTER_AREA)
              for f in read_video_frames(source, info, wanted)]
    return write_h264(tmp_path / name, frames, fps=10)


def test_a_library_in_the_browser_names_carry_over_to_an_added_clip(tmp_path):
    """Name two people on one clip in the page, `add` a second clip of the same scene while the page is open,
    reload: the names are there with the new clip's faces of those people under them; a click on a new appearance
    seeks the player; a whole appearance moved in one action and undone; `export` matches the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from person_cluster import library

    first, second = _kitchen_part(tmp_path, "part one.mp4", 0, 20), _kitchen_part(tmp_path, "part_two.mp4", 20, 37)
    out = tmp_path / "out"
    api.run([str(first)], out, Config(), progress=False)
    page = _Review(out)
    app, url, driver, wait = page.app, page.url, page.driver, page.wait
    people, open_person, click = page.people, page.open_person, page.click

    try:
        driver.get(url)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#people .card")) >= 2)
        ranked = list(people().values())
        for person, name in zip(ranked[:2], ("Alpha", "Beta")):
            open_person(person["key"])
            driver.find_element(By.ID, "name").clear()
            driver.find_element(By.ID, "name").send_keys(name)
            click("rename")
        named = {k: people()[k]["faces"] for k in ("Alpha", "Beta")}
        _, summary = library.add(out, [str(second)], progress=False)  # while the page is open
        assert summary.added == [str(second)]
        driver.get(url)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#people .card"))
        labels = [c.find_element(By.CSS_SELECTOR, ".name").text for c in driver.find_elements(By.CSS_SELECTOR, ".card")]
        assert {"Alpha", "Beta"} <= set(labels)
        now = people()
        assert now["Alpha"]["faces"] > named["Alpha"] and now["Beta"]["faces"] > named["Beta"]
        alpha = now["Alpha"]
        added = [a for a in _appearances(app, alpha["key"]) if a["source"] == second.name]
        assert added, "the added clip's faces of Alpha are Alpha's"
        # The player plays the added clip from an appearance of it.
        open_person(alpha["key"])
        late = max(added, key=lambda a: a["start_s"])
        inputs = [i["source"] for i in json.loads((out / "manifest.json").read_text())["inputs"]]
        driver.find_element(By.CSS_SELECTOR, f'#appearances .appearance[data-track="{late["track"]}"] img.thumb').click()
        wait.until(lambda d: d.execute_script(
            "const v = document.getElementById('player');"
            "return v.readyState >= 2 && !v.seeking && Math.abs(v.currentTime - arguments[0]) < 0.5"
            " && v.currentSrc.endsWith(arguments[1]);", late["start_s"], f"/input/{inputs.index(str(second))}"))
        # A whole appearance of the added clip to Beta in one action, and undone.
        driver.find_element(By.CSS_SELECTOR, f'#appearances .appearance[data-track="{late["track"]}"] input.pick').click()
        Select(driver.find_element(By.ID, "target")).select_by_value(now["Beta"]["key"])
        click("move")
        moved = people()
        assert moved["Beta"]["faces"] == now["Beta"]["faces"] + late["faces"]
        click("undo", "undone: move")
        assert people()["Beta"]["faces"] == now["Beta"]["faces"]
    finally:
        page.close()
    # export follows what the page shows
    dest = tmp_path / "export"
    export(out, dest, "folders", named_only=True)
    manifest = json.loads((out / "manifest.json").read_text())
    for c in manifest["clusters"]:
        if c["name"] in ("Alpha", "Beta"):
            assert len(list((dest / Path(c["folder"]).name).glob("*.jpg"))) == c["size"]
