"""The review server's replies exactly as the browser gets them (issue 20: what the mutation run showed no test
pinned): every refusal's one line, the byte ranges of the player and their 416s, the headers a player revalidates
with, the actions on whole appearances, a manifest that changes or breaks while the page is open, and what the
terminal is told. All on a hand-made OUT (a manifest, two "videos" of known bytes): fast, no pipeline run.

Requests to the real server are written byte by byte on a socket and read until it closes, so that a body sent
where none is due (HEAD) or bytes past the Content-Length are seen, as a browser would get them."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sqlite3
import threading
from pathlib import Path

import pytest
from conftest import get as _get  # a GET, with an input file read as the server would stream it

from person_cluster.layout import ManifestError, read_manifest
from person_cluster.review import Decisions
from person_cluster.review import server as server_module
from person_cluster.review.server import MAX_BODY, ReviewApp, Unsatisfiable, byte_range, make_server

LOGGER = "person_cluster.review.server"
MTIME = 1_700_000_000  # the inputs' modification time: Tue, 14 Nov 2023 22:13:20 GMT
A_BYTES = bytes(range(256)) * 20  # 5,120 bytes
B_BYTES = b"b" * 100


def _face(k: int, source: Path, frame: int, track: int, cluster: int) -> dict:
    return {"id": k, "source": str(source), "frame": frame, "time_s": frame / 10, "bbox": [10 * k, 0, 10 * k + 40, 40],
            "cluster": cluster, "crop": f"people/person_00{cluster}/face_{k:06d}.jpg", "shot": 0, "track": track}


def _manifest(a: Path, b: Path, inputs: list | None = None, bob: str = "Bob") -> dict:
    """Two people: c0 (folder person_000) in a.mp4 (track 7, 3 faces) and b.mp4 (track 8, 2 faces); c1 (Bob) in
    a.mp4 (track 9, 1 face)."""
    faces = [_face(0, a, 0, 7, 0), _face(1, a, 1, 7, 0), _face(2, a, 2, 7, 0), _face(3, b, 0, 8, 0),
             _face(4, b, 1, 8, 0), _face(5, a, 5, 9, 1)]
    shots = [{"source": str(s), "shot": 0, "first_frame": 0, "last_frame": 100, "first_time_s": 0.0,
              "last_time_s": 10.0, "fps": 10.0} for s in (a, b)]
    return {"faces": faces, "frames": [], "shots": shots,
            "clusters": [{"id": 0, "folder": "people/person_000"}, {"id": 1, "folder": f"people/{bob}"}],
            "inputs": [{"source": str(a), "kind": "video"}, {"source": str(b), "kind": "video"}] if inputs is None
            else inputs}


@pytest.fixture
def run(tmp_path) -> tuple[Path, Path, Path]:
    """OUT, and its two input videos beside it."""
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.write_bytes(A_BYTES)
    b.write_bytes(B_BYTES)
    for video in (a, b):
        os.utime(video, (MTIME, MTIME))
    out = tmp_path / "out"
    (out / "people").mkdir(parents=True)
    (out / "manifest.json").write_text(json.dumps(_manifest(a, b)))
    return out, a, b


@pytest.fixture
def app(run) -> ReviewApp:
    return ReviewApp(run[0], port=5555)


def _reply(r) -> tuple[int, dict]:
    return r.status, json.loads(r.body)


def _post(app: ReviewApp, body: dict | bytes):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return app.handle("POST", "/api/action", {"X-Review-Token": app.token}, raw)


def _keys(app: ReviewApp, person: str, track: int) -> list[str]:
    return [f["key"] for f in json.loads(app.handle("GET", f"/api/people/{person}/appearances/{track}", {}).body)["items"]]


def _state(out: Path):
    with Decisions(out) as d:
        return d.people(), d.assigned(), d.not_faces()


# -- refusals, word for word ----------------------------------------------------------------------------------
def test_each_refusal_of_a_read_is_its_one_line(app):
    refused = {
        ("GET", "/elsewhere"): (404, "not found"),
        ("GET", "/static/nothing.js"): (404, "not found"),
        ("GET", "/files/manifest.json"): (404, "not found"),  # not an image of the page's folders
        ("GET", "/files/people/missing.jpg"): (404, "not found"),  # an image of them that is not there
        ("PATCH", "/"): (405, "method not allowed"),
        ("POST", "/api/people"): (405, "method not allowed"),
        ("GET", "/api/people/c42"): (404, "no person 'c42'"),
        ("GET", "/api/people/c42/appearances/7"): (404, "no person 'c42'"),
        ("GET", "/api/people/c0/appearances/9"): (404, "person_000 has no appearance '9'"),  # Bob's
        ("GET", "/api/people/c0/appearances/x"): (400, "not an appearance: 'x'"),
        ("GET", "/api/people/c0/appearances/" + "1" * 50): (400, f"not an appearance: '{'1' * 40}'"),
        ("GET", "/api/people/c0?limit=x"): (400, "offset and limit must be integers"),
        ("GET", "/api/people/c0/appearances/7?offset=1.5"): (400, "offset and limit must be integers"),
    }
    for (method, target), (status, message) in refused.items():
        assert _reply(app.handle(method, target, {})) == (status, {"error": message}), target


def test_a_file_name_with_a_backslash_is_refused_even_where_it_names_a_file(app, run):
    """On Windows a backslash is a separator: a name with one is never served, whatever it names here."""
    out = run[0]
    (out / "people" / "a\\b.jpg").write_bytes(b"\xff\xd8 a photo")
    (out / "people" / "ab.jpg").write_bytes(b"\xff\xd8 a photo")
    assert _reply(app.handle("GET", "/files/people/a%5Cb.jpg", {})) == (404, {"error": "not found"})
    assert app.handle("GET", "/files/people/ab.jpg", {}).status == 200


def test_each_refusal_of_a_change_is_its_one_line(app, run):
    out = run[0]
    before = _state(out)
    a7 = _keys(app, "c0", 7)
    refused = {
        (403, "missing or wrong review token; reload the page"): [
            app.handle("POST", "/api/action", {}, b'{"action": "undo"}'),
            app.handle("POST", "/api/action", {"X-Review-Token": ""}, b'{"action": "undo"}')],
        (403, "requests from http://evil.example are not accepted"): [app.handle(
            "POST", "/api/action", {"X-Review-Token": app.token, "Origin": "http://evil.example"}, b"{}")],
        (413, "request too large"): [_post(app, b" " * (MAX_BODY + 1))],
        (400, "the request is not JSON"): [_post(app, b"{")],
        # handle() called with no body, as for a POST that sent none
        (400, "the request needs an 'action'"): [app.handle("POST", "/api/action", {"X-Review-Token": app.token})],
        (400, "unknown action 'delete_everything'"): [_post(app, {"action": "delete_everything"})],
        (400, "cannot merge a person with itself"): [_post(app, {"action": "merge", "keep": "c0", "other": "c0"})],
        (400, "keep: no such person"): [_post(app, {"action": "merge", "other": "c0"}),
                                        _post(app, {"action": "merge"})],
        (400, "other: no such person"): [_post(app, {"action": "merge", "keep": "c0"})],
        (400, "faces: a list of faces is needed"): [
            _post(app, {"action": "not_a_face"}),  # neither faces nor appearances
            _post(app, {"action": "move", "faces": "abc", "target": "c1"}),
            _post(app, {"action": "move", "faces": [1, 2], "target": "c1"}),
            _post(app, {"action": "move", "faces": [], "target": "c1"}),
            _post(app, {"action": "cover", "person": "c0", "faces": "abc"}),
            _post(app, {"action": "hide", "faces": []})],
        (400, "faces: 1 unknown face(s)"): [_post(app, {"action": "move", "faces": [a7[0], "nope"], "target": "c1"})],
        (400, "appearances: a list of appearances is needed"): [
            _post(app, {"action": "move", "appearances": [], "person": "c0", "target": "c1"}),
            _post(app, {"action": "move", "appearances": "7", "person": "c0", "target": "c1"}),
            _post(app, {"action": "move", "appearances": 7, "person": "c0", "target": "c1"}),
            # more appearances than the run has faces: no page sends that many
            _post(app, {"action": "move", "appearances": [7] * 7, "person": "c0", "target": "c1"})],
        (400, "person: no such person"): [
            _post(app, {"action": "move", "appearances": [7], "target": "c1"}),
            _post(app, {"action": "move", "appearances": [7], "person": "c42", "target": "c1"}),
            _post(app, {"action": "move", "appearances": [7], "person": ["c0"], "target": "c1"}),
            _post(app, {"action": "hide", "appearances": [7], "person": 0})],
        (400, "appearances: person_000 has no appearance 9"): [
            _post(app, {"action": "move", "appearances": [7, 9], "person": "c0", "target": "c1"})],
        (400, "appearances: person_000 has no appearance '9'"): [
            _post(app, {"action": "not_a_face", "appearances": ["9"], "person": "c0"})],
        (400, "not an appearance: 'x'"): [_post(app, {"action": "move", "appearances": ["x"], "person": "c0", "target": "c1"})],
        (400, "not an appearance: 'True'"): [_post(app, {"action": "move", "appearances": [True], "person": "c0"})],
        (400, "not an appearance: '7.0'"): [_post(app, {"action": "move", "appearances": [7.0], "person": "c0"})],
    }
    for (status, message), replies in refused.items():
        for r in replies:
            assert _reply(r) == (status, {"error": message}), message
    assert _state(out) == before


def test_a_decisions_file_another_process_keeps_locked_is_a_503_that_says_try_again(app, run, monkeypatch):
    out = run[0]
    holder = sqlite3.connect(out / "review.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another tab or process, in the middle of its change
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, **{**k, "timeout": 0.05}))  # not 10 s
    try:
        r = _post(app, {"action": "rename", "person": "c1", "name": "Robert"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _reply(r) == (503, {"error": "the decisions could not be saved (database is locked); try again"})


# -- actions on whole appearances -----------------------------------------------------------------------------
def test_an_action_on_appearances_is_for_every_face_of_them_and_the_faces_named(app, run):
    out = run[0]
    a7, b8, bob = _keys(app, "c0", 7), _keys(app, "c0", 8), _keys(app, "c1", 9)
    assert (len(a7), len(b8), len(bob)) == (3, 2, 1)

    def ok(body: dict) -> dict:
        r = _post(app, body)
        assert r.status == 200, r.body
        return json.loads(r.body)

    split = ok({"action": "move", "appearances": [7, "8"], "person": "c0", "target": None})["person"]
    assert {k for k, p in _state(out)[1].items() if p == split} == set(a7 + b8)  # both appearances, whole
    assert ok({"action": "undo"}) == {"ok": True, "undone": "move"}
    # faces and appearances together; an appearance named as often as the run has faces is still one
    moved = ok({"action": "move", "faces": bob, "appearances": [8] * 6, "person": "c0", "target": None})["person"]
    assert {k for k, p in _state(out)[1].items() if p == moved} == set(bob + b8)
    ok({"action": "undo"})
    assert ok({"action": "not_a_face", "appearances": [9], "person": "c1"}) == {"ok": True}
    assert _state(out)[2] == set(bob)


def test_hiding_faces_or_appearances_moves_them_to_a_new_hidden_person(app, run):
    out = run[0]
    a7, b8 = _keys(app, "c0", 7), _keys(app, "c0", 8)
    for body, faces in (({"action": "hide", "faces": a7[:1]}, a7[:1]),
                        ({"action": "hide", "appearances": [8], "person": "c0"}, b8)):
        r = _post(app, body)
        assert r.status == 200, r.body
        reply = json.loads(r.body)
        assert set(reply) == {"ok", "person"} and reply["ok"] is True
        people, assigned, _ = _state(out)
        person = reply["person"]
        assert people[person].hidden and people[person].name == ""
        assert {k for k, p in assigned.items() if p == person} == set(faces)
    shown = json.loads(app.handle("GET", "/api/people", {}).body)["people"]
    assert [(p["faces"], p["hidden"]) for p in shown] == [(2, False), (1, False), (2, True), (1, True)]


# -- what the page reads --------------------------------------------------------------------------------------
def test_a_persons_page_filters_by_video_and_lists_the_videos(app):
    def tracks(query: str) -> list[int]:
        return [a["track"] for a in json.loads(app.handle("GET", f"/api/people/c0{query}", {}).body)["items"]]

    assert tracks("") == [7, 8] and tracks("?video=0") == [7] and tracks("?video=1") == [8] and tracks("?video=2") == []
    page = json.loads(app.handle("GET", "/api/people/c0?video=1", {}).body)
    assert page["appearances"] == 1
    assert page["videos"] == [{"value": "0", "label": "a.mp4", "faces": 3}, {"value": "1", "label": "b.mp4", "faces": 2}]
    r = app.handle("GET", "/api/people/c0/appearances/7?offset=1&limit=1", {})
    assert r.status == 200
    assert {k: v for k, v in json.loads(r.body).items() if k != "items"} == {"track": 7, "faces": 3, "offset": 1}
    assert [f["frame"] for f in json.loads(r.body)["items"]] == [1]


def test_names_are_sent_as_utf_8_not_escaped(app):
    assert _post(app, {"action": "rename", "person": "c1", "name": "Zoë"}).status == 200
    body = app.handle("GET", "/api/people", {}).body
    assert '"name": "Zoë"'.encode() in body and b"\\u00eb" not in body
    assert app.handle("GET", "/api/people/c42", {}).body == b"{\"error\": \"no person 'c42'\"}"
    assert app.handle("GET", "/api/people/zoë", {}).body == "{\"error\": \"no person 'zoë'\"}".encode()


def test_the_session_token_is_32_url_safe_characters_and_an_app_not_serving_has_port_0(run):
    app = ReviewApp(run[0])
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", app.token)  # 24 random bytes: 192 bits
    assert app.port == 0  # make_server sets the one it listens on


# -- the manifest changing under the page ---------------------------------------------------------------------
def _rewrite(out: Path, manifest: dict | str, stamp: int) -> None:
    (out / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    os.utime(out / "manifest.json", ns=(stamp, stamp))


def test_the_manifest_is_read_once_and_again_only_when_it_changed(run, monkeypatch):
    out, a, b = run
    built = []
    real = server_module.ReviewView

    def counting(path):
        built.append(path)
        return real(path)

    monkeypatch.setattr(server_module, "ReviewView", counting)
    app = ReviewApp(out)

    def labels() -> list[str]:
        return [p["label"] for p in json.loads(app.handle("GET", "/api/people", {}).body)["people"]]

    for _ in range(3):
        assert labels() == ["person_000", "Bob"]
    assert built == [out.resolve()]  # one view while the manifest stays as it was
    _rewrite(out, _manifest(a, b, bob="Robert"), 1_800_000_000 * 10**9)  # an `add` or `cluster` while it is open
    for _ in range(3):
        assert labels() == ["person_000", "Robert"]
    assert len(built) == 2


def test_a_manifest_that_breaks_while_the_page_is_open_keeps_the_page_and_says_why(run, caplog):
    out, a, b = run
    app = ReviewApp(out)
    _rewrite(out, "{", 1_800_000_000 * 10**9)  # a hand edit gone wrong
    with pytest.raises(ManifestError) as why:
        read_manifest(out)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):  # a page's many requests: one warning while the manifest stays broken
            people = json.loads(app.handle("GET", "/api/people", {}).body)["people"]
    assert [p["label"] for p in people] == ["person_000", "Bob"]  # the previous run, still
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        f"review: {why.value}; the page keeps showing the previous run"]
    _rewrite(out, _manifest(a, b, bob="Robert"), 1_900_000_000 * 10**9)  # mended: read again
    assert [p["label"] for p in json.loads(app.handle("GET", "/api/people", {}).body)["people"]] == [
        "person_000", "Robert"]
    _rewrite(out, _manifest(a, b, bob="Robert"), 1_900_000_000 * 10**9)  # mended
    assert [p["label"] for p in json.loads(app.handle("GET", "/api/people", {}).body)["people"]] == [
        "person_000", "Robert"]


# -- the inputs, for the player -------------------------------------------------------------------------------
@pytest.mark.parametrize("header, message", [
    ("bytes=" + "0" * 995, "Range header too long"),  # 1,001 characters
    ("garbage", "malformed Range header"),
    ("by tes=0-1", "malformed Range header"),
    ("bytes=", "a Range header needs 1 to 16 byte ranges"),
    ("bytes=" + ",".join(["0-1"] * 17), "a Range header needs 1 to 16 byte ranges"),
    ("bytes=0-1=2", "malformed byte range '0-1=2'"),  # the unit is what comes before the first "="
    ("bytes=5-2", "malformed byte range '5-2'"),
    ("bytes=" + "1" * 50 + "-0", f"malformed byte range '{'1' * 40}'"),  # at most 40 characters of it
    ("bytes=5120-", "no byte range inside the file's 5120 bytes"),
    ("bytes=6000-7000,9000-", "no byte range inside the file's 5120 bytes"),
])
def test_an_unsatisfiable_range_is_a_416_that_says_why(app, header, message):
    r = _get(app, "/input/0", Range=header)
    assert (r.status, json.loads(r.body)) == (416, {"error": message})
    assert r.headers["Content-Range"] == "bytes */5120" and r.content_type == "application/json"
    with pytest.raises(Unsatisfiable, match=f"^{re.escape(message)}$"):
        byte_range(header, len(A_BYTES))


def test_a_range_header_of_1000_characters_is_still_read():
    header = "bytes=0-9" + " " * 991
    assert len(header) == 1000 and byte_range(header, 5120) == (0, 9)


def test_a_range_is_sent_with_the_inputs_type_and_revalidated_by_etag_or_date(app, run):
    _, a, _ = run
    whole = _get(app, "/input/0")
    assert whole.status == 200 and whole.body == A_BYTES and whole.content_type == "video/mp4"
    assert whole.headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    etag = whole.headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag)  # an entity tag is quoted (RFC 9110 8.8.3)
    part = _get(app, "/input/0", Range="bytes=100-109")
    assert (part.status, part.body, part.content_type) == (206, A_BYTES[100:110], "video/mp4")
    assert part.headers == {"Accept-Ranges": "bytes", "ETag": etag, "Last-Modified": "Tue, 14 Nov 2023 22:13:20 GMT",
                            "Content-Range": "bytes 100-109/5120"}
    for validator in (etag, "Tue, 14 Nov 2023 22:13:20 GMT"):  # the file as the player first got it: the range
        r = _get(app, "/input/0", Range="bytes=100-109", **{"If-Range": validator})
        assert (r.status, r.body) == (206, A_BYTES[100:110]), validator
    a.write_bytes(A_BYTES + b"more")  # the file changed since: all of it, with new validators
    os.utime(a, (MTIME + 60, MTIME + 60))
    for validator in (etag, "Tue, 14 Nov 2023 22:13:20 GMT"):
        r = _get(app, "/input/0", Range="bytes=100-109", **{"If-Range": validator})
        assert (r.status, r.body) == (200, A_BYTES + b"more"), validator
        assert r.headers["ETag"] != etag and r.headers["Last-Modified"] == "Tue, 14 Nov 2023 22:14:20 GMT"


def test_inputs_that_cannot_be_played_are_404s_that_say_why(tmp_path, run):
    out, a, _ = run
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 a photo")
    raw = tmp_path / "clip"
    raw.write_bytes(b"no extension")
    inputs = [{"source": str(a), "kind": "frames"}, {"kind": "video"}, {"source": 5, "kind": "video"}, "a.mp4",
              {"source": str(tmp_path / "gone.mp4"), "kind": "video"}, {"source": "/dev/null", "kind": "video"},
              {"source": str(photo), "kind": "image"}, {"source": str(raw), "kind": "video"}]
    (out / "manifest.json").write_text(json.dumps(_manifest(a, a, inputs)))
    app = ReviewApp(out)
    for index, expected in enumerate([
            (404, {"error": "not found"}), (404, {"error": "not found"}), (404, {"error": "not found"}),
            (404, {"error": "not found"}), (404, {"error": "cannot read gone.mp4: No such file or directory; was it moved?"}),
            (404, {"error": "cannot read null: not a file"})]):
        assert _reply(_get(app, f"/input/{index}")) == expected, index
    for target in ("/input/99", "/input/x", "/input/-1"):
        assert _reply(_get(app, target)) == (404, {"error": "not found"}), target
    r = _get(app, "/input/6")
    assert (r.status, r.content_type, r.body) == (200, "image/jpeg", b"\xff\xd8 a photo")
    r = _get(app, "/input/7", Range="bytes=0-1")
    assert (r.status, r.content_type, r.body) == (206, "application/octet-stream", b"no")


# -- the real HTTP server -------------------------------------------------------------------------------------
@pytest.fixture
def served(run):
    srv, app = make_server(run[0])
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield app
    srv.shutdown()
    srv.server_close()


def _raw(app: ReviewApp, request: str) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and every byte after them that the server sent before it closed the connection."""
    with socket.create_connection(("127.0.0.1", app.port), timeout=30) as s:
        s.sendall(request.encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), dict(line.split(": ", 1) for line in lines[1:]), body


def test_a_range_through_the_server_is_those_bytes_and_no_more(served):
    status, headers, body = _raw(served, "GET /input/0 HTTP/1.1\r\nHost: x\r\nRange: bytes=100-109\r\n\r\n")
    assert (status, headers["Content-Length"], body) == (206, "10", A_BYTES[100:110])
    status, headers, body = _raw(served, "GET /input/0 HTTP/1.1\r\nHost: x\r\nRange: bytes=-1000\r\n\r\n")
    assert (status, headers["Content-Range"], body) == (206, "bytes 4120-5119/5120", A_BYTES[-1000:])


def test_head_gets_the_headers_of_every_reply_and_never_a_body(served, monkeypatch):
    app = served
    head = "HEAD {} HTTP/1.1\r\nHost: x\r\n{}\r\n"
    for target, extra, status, length in (
            ("/input/0", "", 200, "5120"), ("/input/0", "Range: bytes=0-9\r\n", 206, "10"),
            ("/api/people", "", 200, None), ("/", "", 200, None),
            ("/nothing", "", 404, str(len(b'{"error": "not found"}'))),
            ("/input/0", "Content-Length: abc\r\n", 400, None),
            ("/input/0", f"Content-Length: {MAX_BODY + 1}\r\n", 413, None)):
        got, headers, body = _raw(app, head.format(target, extra))
        assert (got, body) == (status, b""), (target, extra)
        assert length is None or headers["Content-Length"] == length, (target, extra)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app, "handle", broken)
    got, headers, body = _raw(app, head.format("/api/people", ""))
    assert (got, body) == (500, b"") and headers["Content-Length"] == str(len(b'{"error": "internal error; see the terminal"}'))


def test_the_server_says_what_is_wrong_with_a_content_length(served):
    post = "POST /api/action HTTP/1.1\r\nHost: x\r\nX-Review-Token: {}\r\nContent-Length: {}\r\n\r\n"
    assert _raw(served, post.format(served.token, "abc"))[::2] == (
        400, b'{"error": "Content-Length must be a number of bytes"}')
    assert _raw(served, post.format(served.token, MAX_BODY + 1))[::2] == (413, b'{"error": "request too large"}')


def test_a_browser_that_leaves_and_a_connection_that_ends_early_are_one_debug_line_each(served, monkeypatch, caplog):
    app = served

    def gone(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(app, "handle", gone)
    with caplog.at_level(logging.DEBUG, logger=LOGGER), \
            socket.create_connection(("127.0.0.1", app.port), timeout=30) as s:
        s.sendall(b"GET /files/people/person_000/face_000000.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536) == b""  # no reply: the connection was gone
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert "review: GET /files/people/person_000/face_000000.jpg: connection closed by the browser" in messages
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        server_module._Server.handle_error(None, None, ("127.0.0.1", 5))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "review: connection from ('127.0.0.1', 5) ended early")]
