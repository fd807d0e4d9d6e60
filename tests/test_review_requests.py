"""The review server's rules, with requests exactly as a browser or an attacker sends them: a header missing (not only
empty), an Origin of another site or "null", a token for another session, paths that climb out of OUT, bodies too
large or not JSON; through ReviewApp.handle and through the real HTTP server. A refused change changes nothing."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import threading
from pathlib import Path

import pytest
from conftest import get as _get  # a GET, with an input file read as the server would stream it
from hypothesis import given, settings
from hypothesis import strategies as st

from person_cluster.review import Decisions
from person_cluster.review.server import MAX_BODY, ReviewApp, make_server

PORT = 5555


@pytest.fixture
def out(lfw12_run, tmp_path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(lfw12_run, copy)
    return copy


@pytest.fixture
def app(out) -> ReviewApp:
    return ReviewApp(out, port=PORT)


def _post(app: ReviewApp, body, headers: dict | None = None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return app.handle("POST", "/api/action", {"X-Review-Token": app.token} if headers is None else headers, raw)


def _people(app: ReviewApp) -> list[dict]:
    return json.loads(app.handle("GET", "/api/people", {}).body)["people"]


def _faces(app: ReviewApp, key: str) -> list[dict]:
    """Every face of a person as the page reaches them: each appearance, then its faces."""
    person = json.loads(app.handle("GET", f"/api/people/{key}?limit=500", {}).body)
    faces = []
    for a in person["items"]:
        r = app.handle("GET", f"/api/people/{key}/appearances/{a['track']}?limit=500", {})
        faces += json.loads(r.body)["items"]
    return faces


def _state(out: Path):
    with Decisions(out) as d:
        return d.people(), d.assigned(), d.not_faces()


def _error(r) -> str:
    assert 400 <= r.status < 500, r.status
    message = json.loads(r.body)["error"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


# -- who may change anything ----------------------------------------------------------------------------------
def test_a_change_needs_this_sessions_token_and_no_foreign_origin(app, out):
    key = _people(app)[0]["key"]
    rename = {"action": "rename", "person": key, "name": "Colin"}
    before = _state(out)
    own = [f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}"]
    refused = {
        "no token header at all": {},
        "an empty token": {"X-Review-Token": ""},
        "another session's token": {"X-Review-Token": ReviewApp(out, port=PORT).token},
        "the token with a character more": {"X-Review-Token": app.token + "x"},
        "the token cut short": {"X-Review-Token": app.token[:-1]},
        "a foreign origin": {"X-Review-Token": app.token, "Origin": "http://evil.example"},
        "a sandboxed frame or a file:// page": {"X-Review-Token": app.token, "Origin": "null"},
        "this host, another port": {"X-Review-Token": app.token, "Origin": f"http://127.0.0.1:{PORT + 1}"},
        "this host, no port": {"X-Review-Token": app.token, "Origin": "http://127.0.0.1"},
        "https": {"X-Review-Token": app.token, "Origin": f"https://127.0.0.1:{PORT}"},
        "a look-alike host": {"X-Review-Token": app.token, "Origin": f"http://127.0.0.1:{PORT}.evil.example"},
        "the right origin, no token": {"Origin": own[0]},
    }
    for what, headers in refused.items():
        r = _post(app, rename, headers)
        assert r.status == 403, what
        _error(r)
        assert _state(out) == before, what
    # The token is checked before anything is read: a bad request without it is a 403 too.
    assert _post(app, b"{not json", {}).status == 403
    assert _post(app, b"x" * (MAX_BODY + 1), {"X-Review-Token": "wrong"}).status == 403
    # Accepted: the token, with this server's origin or none (a client that sends no Origin).
    for k, headers in enumerate([{"X-Review-Token": app.token}, *({"X-Review-Token": app.token, "Origin": o} for o in own)]):
        r = _post(app, {**rename, "name": f"Colin {k}"}, headers)
        assert r.status == 200 and json.loads(r.body)["ok"] is True, headers
        person = json.loads(r.body)["person"]
        assert _state(out)[0][person].name == f"Colin {k}"
        rename["person"] = f"p{person}"  # named, the cluster is shown as that person


def test_every_session_has_its_own_unguessable_token_and_the_page_carries_it(out):
    a, b = ReviewApp(out), ReviewApp(out)
    assert a.token != b.token and len(a.token) >= 32
    page = a.handle("GET", "/", {})
    assert page.status == 200 and page.content_type.startswith("text/html")
    assert f'content="{a.token}"'.encode() in page.body and b"__TOKEN__" not in page.body
    assert a.handle("GET", "/index.html", {}).body == page.body


# -- malformed changes ----------------------------------------------------------------------------------------
def test_malformed_or_hand_made_changes_get_a_4xx_with_one_line_and_change_nothing(app, out):
    people = _people(app)
    key, other = people[0]["key"], people[1]["key"]
    face = _faces(app, key)[0]["key"]
    before = _state(out)
    bad = {
        "empty body": b"",
        "JSON null": b"null",
        "a list": b"[]",
        "not UTF-8": b"\xff\xfe{",
        "action not text": {"action": 5},
        "no action": {"person": key},
        "unknown action": {"action": "delete_everything"},
        "person missing": {"action": "rename", "name": "x"},
        "person not text": {"action": "rename", "person": ["c0"], "name": "x"},
        "person unknown": {"action": "rename", "person": "c999", "name": "x"},
        "person with a NUL": {"action": "rename", "person": key + "\x00", "name": "x"},
        "name missing": {"action": "rename", "person": key},
        "name a number": {"action": "rename", "person": key, "name": 7},
        "name blank": {"action": "rename", "person": key, "name": " \t\n"},
        "name too long": {"action": "rename", "person": key, "name": "x" * 100_000},
        "merge with itself": {"action": "merge", "keep": key, "other": key},
        "merge with no one": {"action": "merge", "keep": key},
        "faces not a list": {"action": "not_a_face", "faces": face},
        "faces empty": {"action": "not_a_face", "faces": []},
        "faces not text": {"action": "not_a_face", "faces": [1, 2]},
        "a face unknown": {"action": "not_a_face", "faces": [face, "../../etc/passwd"]},
        "move to no one known": {"action": "move", "faces": [face], "target": "c999"},
        "move nothing": {"action": "move", "target": other},
        "cover of another person": {"action": "cover", "person": other, "faces": [face]},
        "cover without faces": {"action": "cover", "person": key},
        "too large": b'{"action": "undo", "pad": "' + b"x" * MAX_BODY + b'"}',
    }
    for what, body in bad.items():
        r = _post(app, body)
        message = _error(r)
        assert r.status == (413 if what == "too large" else 400), what
        assert _state(out) == before, what
        if what.startswith(("person", "faces", "a face", "name")):
            assert message.split(":")[0] in ("person", "faces", "name", "a name must not be empty",
                                             "a name must be at most 200 characters"), (what, message)
    just_enough = json.dumps({"action": "undo"}).encode()
    assert _post(app, just_enough + b" " * (MAX_BODY - len(just_enough))).status == 200  # MAX_BODY itself is fine


def test_each_action_does_what_it_says(app, out):
    people = _people(app)
    a, b, c = (p["key"] for p in people[:3])
    faces = {p["key"]: [f["key"] for f in _faces(app, p["key"])] for p in people}

    def ok(body) -> dict:
        r = _post(app, body)
        assert r.status == 200, r.body
        return json.loads(r.body)

    ann = ok({"action": "rename", "person": a, "name": "Ann"})["person"]
    assert _state(out)[0][ann].name == "Ann" and {k for k, p in _state(out)[1].items() if p == ann} == set(faces[a])
    assert ok({"action": "merge", "keep": f"p{ann}", "other": b})["person"] == ann
    assert {k for k, p in _state(out)[1].items() if p == ann} == set(faces[a]) | set(faces[b])
    split = ok({"action": "move", "faces": faces[a][:1], "target": None})["person"]
    assert split != ann and _state(out)[1][faces[a][0]] == split
    assert ok({"action": "move", "faces": faces[a][:1], "target": f"p{ann}"})["person"] == ann
    assert ok({"action": "not_a_face", "faces": faces[c][:1]}) == {"ok": True}
    assert _state(out)[2] == {faces[c][0]}
    assert ok({"action": "hide", "person": f"p{ann}"})["person"] == ann and _state(out)[0][ann].hidden
    assert ok({"action": "hide", "person": f"p{ann}", "hidden": False})["person"] == ann
    assert not _state(out)[0][ann].hidden
    assert ok({"action": "cover", "person": f"p{ann}", "faces": [faces[b][0]]})["person"] == ann
    assert _state(out)[0][ann].cover == faces[b][0]
    assert ok({"action": "undo"}) == {"ok": True, "undone": "cover"}
    assert _state(out)[0][ann].cover is None
    assert [p["name"] for p in _people(app) if p["key"] == f"p{ann}"] == ["Ann"]


# -- reading --------------------------------------------------------------------------------------------------
def test_a_persons_appearances_and_their_faces_are_paged_within_bounds(app):
    people = _people(app)
    key = people[0]["key"]
    full = json.loads(app.handle("GET", f"/api/people/{key}", {}).body)
    n = full["appearances"]
    assert full["faces"] == people[0]["faces"] >= 3 and len(full["items"]) == n >= 3 and full["offset"] == 0
    assert sum(a["faces"] for a in full["items"]) == full["faces"]
    assert sorted(c["key"] for c in full["candidates"]) == sorted(p["key"] for p in people if p["key"] not in (key, "u"))

    def page(query: str, path: str = "") -> dict:
        r = app.handle("GET", f"/api/people/{key}{path}?{query}", {})
        assert r.status == 200, (query, r.body)
        return json.loads(r.body)

    tracks = [a["track"] for a in full["items"]]
    assert [a["track"] for a in page("offset=1&limit=1")["items"]] == tracks[1:2]
    assert "timeline" not in page("offset=1") and page("offset=0")["timeline"] == full["timeline"]
    assert [a["track"] for a in page("offset=-5&limit=2")["items"]] == tracks[:2]
    assert len(page("limit=0")["items"]) == 1  # at least one
    assert len(page("limit=100000")["items"]) == n  # at most 500 a page (n is less)
    assert page(f"offset={n}")["items"] == []
    for bad in ("offset=x", "limit=1.5", "offset=1e3", "limit=%00"):
        assert app.handle("GET", f"/api/people/{key}?{bad}", {}).status == 400, bad
        assert app.handle("GET", f"/api/people/{key}/appearances/{tracks[0]}?{bad}", {}).status == 400, bad
    assert app.handle("GET", "/api/people/nobody", {}).status == 404
    assert app.handle("GET", "/api/people/..%2F..%2Fetc", {}).status == 404
    for track in ("999999", "-1", "x", "1.5", "", "0" * 40):
        assert app.handle("GET", f"/api/people/{key}/appearances/{track}", {}).status in (400, 404), track
    item = full["items"][0]
    assert set(item) == {"track", "source", "input", "photo", "start_s", "end_s", "faces", "face"}
    faces = page("", f"/appearances/{item['track']}")
    assert faces["faces"] == item["faces"] == len(faces["items"]) and faces["items"][0]["key"] == item["face"]["key"]
    assert faces["items"][0]["crop"].startswith("people/")
    assert page("offset=1", f"/appearances/{item['track']}")["items"] == faces["items"][1:]


def test_the_page_and_its_two_static_files_are_served_and_nothing_else(app):
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        r = app.handle("GET", f"/static/{name}", {})
        assert r.status == 200 and r.content_type.startswith(kind) and len(r.body) > 100
    for path in ("/static/index.html", "/static/../server.py", "/static/", "/static/app.js/", "/nothing", "/api",
                 "/api/peoples"):
        assert app.handle("GET", path, {}).status == 404, path
    assert app.handle("PUT", "/api/action", {}).status == 405
    assert app.handle("POST", "/api/people", {"X-Review-Token": app.token}).status == 405


# -- files ----------------------------------------------------------------------------------------------------
def _with_traps(out: Path) -> tuple[bytes, Path]:
    """A secret image beside OUT, and links inside OUT that lead to it."""
    secret = out.parent / "secret.jpg"
    secret.write_bytes(b"\xff\xd8 the user's other photo")
    (out / "people" / "link.jpg").symlink_to(secret)
    (out / "people" / "dirlink").symlink_to(out.parent, target_is_directory=True)
    (out / "frames" / "inside.png").write_bytes(b"\x89PNG frame")  # inside OUT, but not a folder the page shows
    return secret.read_bytes(), secret


segments = st.sampled_from(["..", ".", "", "people", "person_000", "montages", "timelines", "frames", "secret.jpg",
                            "face_000000.jpg", "link.jpg", "dirlink", "%2e%2e", "%2F", "%252F", "\\", "..\\..",
                            "\x00", "%00", "inside.png", "x" * 300, "é", "people%2F..%2F..", "/"])


@pytest.fixture(scope="module")
def trapped(lfw12_run, tmp_path_factory):
    """A review of a run with traps beside and inside it; what it may serve: the images of its three folders."""
    out = tmp_path_factory.mktemp("files") / "out"
    shutil.copytree(lfw12_run, out)
    secret, _ = _with_traps(out)
    allowed = {p.read_bytes() for folder in ("people", "montages", "timelines") for p in (out / folder).rglob("*")
               if p.suffix in (".jpg", ".png") and p.resolve().is_relative_to(out.resolve())}
    return ReviewApp(out), secret, allowed


@settings(max_examples=300)
@given(parts=st.lists(segments, min_size=1, max_size=7))
def test_no_path_serves_a_file_outside_the_image_folders_of_out(trapped, parts):
    app, secret, allowed = trapped
    r = app.handle("GET", "/files/" + "/".join(parts), {})
    assert r.status in (200, 404)
    if r.status == 200:
        assert r.body != secret and r.body in allowed
        assert r.content_type in ("image/jpeg", "image/png")
    else:
        _error(r)


def test_the_files_the_page_shows_are_served_and_traps_are_not(app, out):
    secret, path = _with_traps(out)
    crop = "people/person_000/face_000000.jpg"
    r = app.handle("GET", f"/files/{crop}", {})
    assert r.status == 200 and r.content_type == "image/jpeg" and r.body == (out / crop).read_bytes()
    assert app.handle("GET", "/files/people%2Fperson_000%2Fface_000000.jpg", {}).status == 200  # encoded slashes
    montage = app.handle("GET", "/files/montages/person_000.jpg", {})
    assert montage.status == 200 and montage.body[:2] == b"\xff\xd8"
    (out / "timelines").mkdir(exist_ok=True)
    (out / "timelines" / "v.png").write_bytes(b"\x89PNG timeline")
    r = app.handle("GET", "/files/timelines/v.png", {})
    assert r.status == 200 and r.content_type == "image/png" and r.body == b"\x89PNG timeline"
    for refused in ("people/link.jpg", "people/dirlink/secret.jpg", "people/../../secret.jpg", f"/{path}",
                    f"people/{path}", "frames/inside.png", "people\\..\\..\\secret.jpg", "people/x.jpg\x00.png",
                    "people/person_000/face_000000.jpg%00", "people/person_000", "people/person_000/",
                    "manifest.json", "features.sqlite", "people/../manifest.json", "peoplex/a.jpg",
                    "people/person_000/face_000000.JPG", "people/person_000/face_000000.jpeg", "montages/nothing.jpg"):
        r = app.handle("GET", "/files/" + refused, {})
        assert r.status == 404 and r.body != secret, refused


# -- the inputs, for the player ----------------------------------------------------------------------------
def _out_with_a_video(tmp_path: Path) -> tuple[Path, Path]:
    """A hand-made OUT (manifest only) whose one input is a "video" of 5,000 known bytes beside it."""
    out = _big_out(tmp_path, n=3)
    video = tmp_path / "clip.mp4"
    video.write_bytes(bytes(range(256)) * 19 + bytes(136))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["inputs"] = [{"source": str(video), "kind": "video"}]
    for f in manifest["faces"]:
        f["source"] = str(video)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out, video


def test_inputs_are_served_by_number_with_byte_ranges(tmp_path):
    """``/input/<n>``: the manifest's n-th input, whole (200) or the one range asked for (206, Content-Range), 416
    with ``bytes */size`` for a range outside it or a malformed or huge Range header; several ranges get the whole
    file; nothing that is not a listed input."""
    out, path = _out_with_a_video(tmp_path)
    app = ReviewApp(out)
    index = 0
    data = path.read_bytes()
    size = len(data)
    whole = _get(app, f"/input/{index}")
    assert whole.status == 200 and whole.body == data and whole.content_type == "video/mp4"
    assert whole.headers["Accept-Ranges"] == "bytes"
    ranges = {"bytes=0-99": (0, 99), "bytes=100-": (100, size - 1), "bytes=-100": (size - 100, size - 1),
              f"bytes=10-{size * 2}": (10, size - 1), " bytes = 5-5 ": (5, 5), "bytes=0-0,": (0, 0),
              f"bytes=-{size * 3}": (0, size - 1), f"bytes={size - 1}-": (size - 1, size - 1)}
    for header, span in ranges.items():
        r = _get(app, f"/input/{index}", Range=header)
        first, last = span
        assert r.status == 206, header
        assert r.headers["Content-Range"] == f"bytes {first}-{last}/{size}", header
        assert r.body == data[first:last + 1], header
    for header in ("bytes=0-1,5-6", "items=0-5"):  # several ranges, another unit: the whole file
        r = _get(app, f"/input/{index}", Range=header)
        assert r.status == 200 and len(r.body) == size, header
    changed = _get(app, f"/input/{index}", Range="bytes=0-9", **{"If-Range": '"stale"'})
    assert changed.status == 200 and len(changed.body) == size  # the file changed since: all of it
    same = _get(app, f"/input/{index}", Range="bytes=0-9", **{"If-Range": whole.headers["ETag"]})
    assert same.status == 206 and same.body == data[:10]
    for header in (f"bytes={size}-", "bytes=999999999999999999999-", "bytes=5-2", "garbage", "bytes=", "bytes=-0",
                   "bytes=a-b", "bytes=1-2-3", "bytes=--5", "bytes=+1-2", "bytes=0x10-",
                   ",".join(["bytes=0-1"] + ["3-4"] * 20), "bytes=" + "9" * 5000 + "-"):
        r = _get(app, f"/input/{index}", Range=header)
        assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{size}", header[:40]
        assert json.loads(r.body)["error"], header
    for target in ("/input/", f"/input/{index + 1}", "/input/-1", f"/input/{index}/../manifest.json",
                   "/input/..%2Fmanifest.json", f"/input/%2F{path}", f"/input/{path}", "/input/0x0", "/input/ 0",
                   "/input/१", f"/input/{index}%00", "/input/99999999999999999999999"):
        r = _get(app, target)
        assert r.status == 404, target
    assert app.handle("POST", f"/input/{index}", {}).status == 405


# -- the real HTTP server -------------------------------------------------------------------------------------
@pytest.fixture
def server(out):
    srv, app = make_server(out)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield app
    srv.shutdown()
    srv.server_close()


def _http(app: ReviewApp, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def _raw(app: ReviewApp, request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", app.port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_the_http_server_applies_the_same_rules_to_real_requests(server, out):
    app = server
    assert app.port > 0
    status, headers, body = _http(app, "GET", "/")
    assert status == 200 and app.token.encode() in body
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Content-Length"] == str(len(body)) and headers["Content-Type"].startswith("text/html")
    key = json.loads(_http(app, "GET", "/api/people")[2])["people"][0]["key"]
    rename = json.dumps({"action": "rename", "person": key, "name": "Colin"}).encode()
    before = _state(out)
    origin = f"http://127.0.0.1:{app.port}"
    for headers in ({}, {"X-Review-Token": ""}, {"X-Review-Token": "x" * 32},
                    {"X-Review-Token": app.token, "Origin": "http://evil.example"},
                    {"X-Review-Token": app.token, "Origin": "null"},
                    {"X-Review-Token": app.token, "Origin": f"http://127.0.0.1:{app.port + 1}"}):
        status, _, body = _http(app, "POST", "/api/action", rename, {"Content-Type": "application/json", **headers})
        assert status == 403 and "error" in json.loads(body), headers
    assert _state(out) == before
    # Header names are not case-sensitive on the wire.
    status, _, body = _http(app, "POST", "/api/action", rename, {"x-review-token": app.token, "origin": origin})
    assert status == 200 and json.loads(body)["ok"] is True
    assert any(p.name == "Colin" for p in _state(out)[0].values())
    crop = "people/person_000/face_000000.jpg"
    status, headers, body = _http(app, "GET", f"/files/{crop}")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body == (out / crop).read_bytes()


def test_the_http_server_refuses_bodies_too_large_or_lengths_that_are_not_numbers(server, out):
    app = server
    too_large = (f"POST /api/action HTTP/1.1\r\nHost: x\r\nX-Review-Token: {app.token}\r\n"
                 f"Content-Length: {MAX_BODY + 1}\r\n\r\n").encode()
    status, body = _raw(app, too_large)  # refused before the body is read: the client sent none
    assert status == 413 and json.loads(body)["error"]
    for length in ("abc", "1e3", "-5", ""):
        request = (f"POST /api/action HTTP/1.1\r\nHost: x\r\nX-Review-Token: {app.token}\r\n"
                   f"Content-Length: {length}\r\n\r\n").encode()
        status, body = _raw(app, request)
        assert status == 400 and "\n" not in json.loads(body)["error"], length
    status, body = _raw(app, b"GET /files/people/../../secret.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 404
    secret, _ = _with_traps(out)
    for path in (b"/files/people/link.jpg", b"/files/..%2Fsecret.jpg", b"/files/people/dirlink/secret.jpg"):
        status, body = _raw(app, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 404 and body != secret, path


def test_a_failure_inside_the_server_is_one_line_and_a_500(server, monkeypatch):
    app = server

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(app, "handle", broken)
    status, headers, body = _http(app, "GET", "/api/people")
    assert status == 500 and json.loads(body) == {"error": "internal error; see the terminal"}
    assert headers["Content-Type"] == "application/json"


def test_the_server_listens_on_loopback_only_and_a_taken_port_is_one_line(out):
    srv, app = make_server(out)
    try:
        assert srv.server_address[0] == "127.0.0.1" and app.port == srv.server_address[1] > 0
        from person_cluster.review import DecisionError

        with pytest.raises(DecisionError, match=f"cannot listen on 127.0.0.1:{app.port}"):
            make_server(out, app.port)
    finally:
        srv.server_close()


def test_a_browser_leaving_the_page_is_a_debug_line_not_a_traceback(server, monkeypatch, caplog, capsys):
    import logging

    app = server

    def gone(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(app, "handle", gone)
    with caplog.at_level(logging.DEBUG, logger="person_cluster.review.server"), \
            pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _http(app, "GET", "/files/people/person_000/face_000000.jpg")
    records = [r for r in caplog.records if r.name == "person_cluster.review.server"]
    assert records and all(r.levelno == logging.DEBUG for r in records)
    assert any("connection closed by the browser" in r.getMessage() for r in records)
    from person_cluster.review.server import _Server  # what socketserver does when a handler ends early

    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="person_cluster.review.server"):
        _Server.handle_error(None, None, ("127.0.0.1", 5))
    assert [r.levelno for r in caplog.records] == [logging.DEBUG] and "127.0.0.1" in caplog.records[0].getMessage()
    assert "Traceback" not in capsys.readouterr().err


def _big_out(tmp_path: Path, n: int = 620) -> Path:
    """An OUT whose one person has more faces than a page holds (a manifest only: no cache, no images)."""
    out = tmp_path / "big"
    out.mkdir()
    faces = [{"id": k, "source": "v.mp4", "frame": k, "time_s": k / 10, "bbox": [0, 0, 40, 40], "cluster": 0,
              "crop": f"people/person_000/face_{k:06d}.jpg", "shot": 0, "track": k} for k in range(n)]
    faces.append({"id": n, "source": "v.mp4", "frame": 0, "time_s": 0.0, "bbox": [50, 0, 90, 40], "cluster": 1,
                  "crop": f"people/person_001/face_{n:06d}.jpg", "shot": 0, "track": n})
    manifest = {"faces": faces, "frames": [],
                "clusters": [{"id": 0, "folder": "people/person_000"}, {"id": 1, "folder": "people/Bob"}],
                "shots": [{"source": "v.mp4", "shot": 0, "first_frame": 0, "last_frame": 1000, "first_time_s": 0.0,
                           "last_time_s": 100.0, "fps": 10.0}]}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_a_page_holds_at_most_500_faces_and_names_the_candidates(tmp_path):
    app = ReviewApp(_big_out(tmp_path))
    page = json.loads(app.handle("GET", "/api/people/c0?limit=100000", {}).body)
    assert page["faces"] == 620 and len(page["items"]) == 500
    assert [a["face"]["frame"] for a in page["items"]] == list(range(500))  # one appearance a face here
    rest = json.loads(app.handle("GET", "/api/people/c0?offset=500&limit=500", {}).body)
    assert [a["face"]["frame"] for a in rest["items"]] == list(range(500, 620))
    assert len(json.loads(app.handle("GET", "/api/people/c0", {}).body)["items"]) == 200  # the default page
    assert page["candidates"] == [{"key": "c1", "label": "Bob"}]


def test_every_refusal_says_why(app):
    for r in (app.handle("GET", "/static/nothing.js", {}), app.handle("GET", "/api/people/c42", {}),
              app.handle("GET", "/api/people/c0?limit=x", {}), app.handle("GET", "/files/nothing.jpg", {}),
              app.handle("GET", "/elsewhere", {}), app.handle("PATCH", "/", {})):
        message = _error(r)
        assert isinstance(message, str) and len(message) > 5
    assert "c42" in _error(app.handle("GET", "/api/people/c42", {}))
    assert "integers" in _error(app.handle("GET", "/api/people/c0?limit=x", {}))


def test_the_server_sends_its_security_headers_and_reads_exactly_the_declared_body(server, out):
    app = server
    status, headers, _ = _http(app, "GET", "/api/people")
    assert headers["Content-Security-Policy"] == \
        "default-src 'self'; img-src 'self'; media-src 'self'; frame-ancestors 'none'"
    assert headers["Content-Type"] == "application/json"

    def post(body: bytes, length: int | None = None):
        head = f"POST /api/action HTTP/1.1\r\nHost: x\r\nX-Review-Token: {app.token}\r\n" \
               f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
        status, reply = _raw(app, head.encode() + body)
        return status, json.loads(reply)

    assert post(b"") == (400, {"error": "the request needs an 'action'"})  # no body: nothing to read
    assert post(b"{") == (400, {"error": "the request is not JSON"})  # a body of one byte is read
    status, reply = post(b"x", length=-1)
    assert status == 400 and "Content-Length" in reply["error"]
    just = json.dumps({"action": "undo"}).encode()
    assert post(just + b" " * (MAX_BODY - len(just))) == (200, {"ok": True, "undone": None})  # MAX_BODY: accepted


def test_what_fails_inside_is_told_in_the_terminal_and_requests_in_the_debug_log(server, monkeypatch, caplog):
    import logging

    app = server
    with caplog.at_level(logging.DEBUG, logger="person_cluster.review.server"):
        assert _http(app, "GET", "/api/people")[0] == 200
        monkeypatch.setattr(app, "handle", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk on fire")))
        assert _http(app, "GET", "/api/people?x=1")[0] == 500
    messages = [r.getMessage() for r in caplog.records if r.name == "person_cluster.review.server"]
    assert any("GET /api/people HTTP/1.1" in m and "200" in m for m in messages)  # the request line, formatted
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["review: GET /api/people?x=1 failed: disk on fire"]
    assert all(m.startswith("review: ") for m in messages)


def test_two_reviews_at_once_each_get_a_free_port(out, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(out, other)
    first, a = make_server(out)
    try:
        second, b = make_server(other)
        try:
            assert a.port != b.port and a.port > 1024 and b.port > 1024
        finally:
            second.server_close()
    finally:
        first.server_close()


@pytest.mark.parametrize("header, size, expected", [
    (None, 10, None), ("bytes=0-4", 10, (0, 4)), ("bytes=4-", 10, (4, 9)), ("bytes=-3", 10, (7, 9)),
    ("bytes=8-20", 10, (8, 9)), ("bytes=-20", 10, (0, 9)), ("bytes=9-9", 10, (9, 9)), ("BYTES=1-2", 10, (1, 2)),
    ("bytes=0-1,4-5", 10, None), ("items=0-5", 10, None), ("bytes=0-1, ,", 10, (0, 1)),
    ("bytes=20-,3-4", 10, None), ("bytes=0-0", 1, (0, 0)), ("bytes=-1", 1, (0, 0))])
def test_a_range_header_is_read_as_rfc_9110_says(header, size, expected):
    from person_cluster.review.server import byte_range

    assert byte_range(header, size) == expected


@pytest.mark.parametrize("header, size", [
    ("bytes=10-", 10), ("bytes=5-2", 10), ("garbage", 10), ("bytes=", 10), ("bytes=-0", 10), ("bytes=a-b", 10),
    ("=0-1", 10), ("by tes=0-1", 10), ("bytes=0-1-2", 10), ("bytes=-5", 0), ("bytes=0-", 0), ("bytes=20-,30-", 10),
    ("bytes=" + ",".join(["0-1"] * 17), 10), ("bytes=0-1" + " " * 1000, 10)])
def test_a_range_outside_the_file_or_malformed_is_unsatisfiable(header, size):
    from person_cluster.review.server import MAX_RANGES, Unsatisfiable, byte_range

    assert MAX_RANGES < 17
    with pytest.raises(Unsatisfiable):
        byte_range(header, size)
    assert byte_range("bytes=" + ",".join(["0-1"] * MAX_RANGES), 10) is None  # as many as allowed: the whole file


def test_head_of_an_input_sends_its_headers_and_no_body(tmp_path):
    out, video = _out_with_a_video(tmp_path)
    srv, app = make_server(out)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        status, headers, body = _http(app, "HEAD", "/input/0")
        assert status == 200 and body == b"" and headers["Content-Length"] == str(video.stat().st_size)
        assert headers["Accept-Ranges"] == "bytes" and headers["Content-Type"] == "video/mp4"
        status, headers, body = _http(app, "GET", "/input/0", headers={"Range": "bytes=10-19"})
        assert status == 206 and body == video.read_bytes()[10:20] and headers["Content-Length"] == "10"
    finally:
        srv.shutdown()
        srv.server_close()
