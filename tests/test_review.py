"""The review page: its rules as requests (loopback only, files inside OUT only, a token and an Origin for every
change, a 4xx and one line for anything malformed), and the whole flow in a real browser (Debian's chromium)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml

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


def test_review_in_a_browser_then_cluster_and_export_follow_the_decisions(out, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    server, app = make_server(out)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{app.port}/"
    driver = _browser()
    wait = WebDriverWait(driver, 20)

    def people() -> dict[str, dict]:
        return {p["label"]: p for p in json.loads(app.handle("GET", "/api/people", {}).body)["people"]}

    def open_person(key: str) -> None:
        """A fresh page load: nothing the previous page still had in flight can redraw this one."""
        driver.get("about:blank")
        driver.get(f"{url}#/p/{key}")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#faces .face"))

    def click(button: str) -> None:
        """Click, and wait until the server has answered (the status line is cleared first, so the wait cannot
        be met by the previous action's "saved")."""
        driver.execute_script("document.getElementById('status').textContent = '';")
        driver.find_element(By.ID, button).click()
        wait.until(lambda d: d.find_element(By.ID, "status").text == "saved" or "error" in
                   d.find_element(By.ID, "status").get_attribute("class"))
        assert "error" not in driver.find_element(By.ID, "status").get_attribute("class"), \
            driver.find_element(By.ID, "status").text
        time.sleep(0.3)  # the page reloads its data

    try:
        driver.get(url)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#people .card")) >= 4)
        start = people()
        ranked = list(start.values())
        # Rename two people (one with a name that must stay text), merge two, split one face off, mark one.
        open_person(ranked[0]["key"])
        driver.find_element(By.ID, "name").clear()
        driver.find_element(By.ID, "name").send_keys("Rachel <img src=x onerror=alert(1)>")
        click("rename")
        open_person(ranked[1]["key"])
        driver.find_element(By.ID, "name").clear()
        driver.find_element(By.ID, "name").send_keys("Joey")
        click("rename")
        now = people()
        joey = now["Joey"]
        open_person(joey["key"])
        Select(driver.find_element(By.ID, "target")).select_by_value(ranked[2]["key"])
        click("merge")
        rachel = people()["Rachel <img src=x onerror=alert(1)>"]
        open_person(rachel["key"])
        assert driver.find_element(By.ID, "title").text.startswith("Rachel <img src=x onerror=alert(1)>")
        assert not driver.find_elements(By.CSS_SELECTOR, "h1 img")  # shown as text, not HTML
        assert driver.find_elements(By.CSS_SELECTOR, "#timeline svg rect.on")  # when the person is on screen
        faces = driver.find_elements(By.CSS_SELECTOR, "#faces .face")
        split_key, notface_key = faces[0].get_attribute("data-key"), faces[1].get_attribute("data-key")
        faces[0].click()
        click("split")
        open_person(rachel["key"])
        driver.find_element(By.CSS_SELECTOR, f'#faces .face[data-key="{notface_key}"]').click()
        click("notface")
        # Reload: everything persisted.
        driver.get(url)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#people .card"))
        labels = [c.find_element(By.CSS_SELECTOR, ".name").text for c in driver.find_elements(By.CSS_SELECTOR, ".card")]
        assert "Rachel <img src=x onerror=alert(1)>" in labels and "Joey" in labels
        final = people()
        assert final["Joey"]["faces"] == ranked[1]["faces"] + ranked[2]["faces"]
        assert final["Rachel <img src=x onerror=alert(1)>"]["faces"] == ranked[0]["faces"] - 2
        driver.save_screenshot(str(tmp_path / "grid.png"))
        decided = {label: _faces_of(app, p["key"]) for label, p in final.items() if p["name"]}
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
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
    items, offset = [], 0
    while True:
        page = json.loads(app.handle("GET", f"/api/people/{key}?offset={offset}&limit=500", {}).body)
        items += [f["key"] for f in page["items"]]
        offset += len(page["items"])
        if offset >= page["faces"] or not page["items"]:
            return items
