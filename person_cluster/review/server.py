"""``person-cluster review OUT``: a local page to name, merge, split and correct the people of a run.

Standard library only (``http.server``), bound to 127.0.0.1, everything it serves bundled in the package (the
machine may be offline). :class:`ReviewApp` maps a request to a response and is what the tests call; the HTTP
server only carries bytes. Its rules:

- files: only images under ``people/``, ``montages/`` and ``timelines/`` of OUT, checked after resolving (``..``,
  absolute paths, encoded slashes and symlinks that lead out are refused with 404);
- inputs: ``/input/<n>`` is the n-th of the manifest's inputs, a video or a photo the run read (the player plays
  it); the client names a number, never a path. Byte ranges as RFC 9110 says (:func:`byte_range`), streamed from
  the file; a video that moved or cannot be read is a 404 with one line;
- changes: ``POST /api/action`` with the page's per-session token in ``X-Review-Token`` and, when the browser sends
  one, an ``Origin`` of this server; anything else is refused with 403, so another site cannot act for the user;
- malformed requests get a 4xx with a one-line message; a decision is one transaction (see :mod:`.decisions`).
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import re
import secrets
import sqlite3
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from ..layout import MANIFEST, ManifestError
from .decisions import DecisionError, Decisions
from .view import Group, ReviewView

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
_FILE_ROOTS = ("people/", "montages/", "timelines/")
_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8"}
_STATIC = ("app.js", "app.css")


MAX_RANGES = 16  # more byte ranges in one Range header than a player ever sends: refused (RFC 9110 14.2)
MAX_RANGE_HEADER = 1000  # characters
_RANGE_SPEC = re.compile(r"([0-9]+)-([0-9]*)|-([0-9]+)")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # An input file's bytes [start, start + length), streamed by the server instead of ``body``; the receiver of
    # the Response closes it.
    file: BinaryIO | None = None
    start: int = 0
    length: int = 0


def _json(status: int, value: Any) -> Response:
    return Response(status, json.dumps(value, ensure_ascii=False).encode())


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


class Unsatisfiable(ValueError):
    """A Range header that is malformed, asks for too many ranges or for none inside the file: 416."""


def byte_range(value: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range ``(first, last)``, inclusive, that a Range header asks of a file of ``size`` bytes
    (RFC 9110 14.1.2: ``bytes=a-b``, ``bytes=a-``, ``bytes=-suffix``; a last position past the end is the end).
    None: send the whole file, for no Range, another range unit (which a server must ignore) or several ranges (a
    server may ignore the field, and players never ask for several). Raises :class:`Unsatisfiable` for a header
    that is malformed (``bytes=5-2``, garbage), asks for more than :data:`MAX_RANGES` ranges or none that starts
    inside the file. ``http.server`` does no ranges, and this is all the server needs of them."""
    if value is None:
        return None
    if len(value) > MAX_RANGE_HEADER:
        raise Unsatisfiable("Range header too long")
    unit, eq, ranges = value.partition("=")
    if not eq or not _TOKEN.fullmatch(unit.strip()):
        raise Unsatisfiable("malformed Range header")
    if unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in ranges.split(",") if s.strip()]  # a list may hold empty elements
    if not specs or len(specs) > MAX_RANGES:
        raise Unsatisfiable(f"a Range header needs 1 to {MAX_RANGES} byte ranges")
    wanted = []
    for spec in specs:
        m = _RANGE_SPEC.fullmatch(spec)
        if m is None or (m[2] and int(m[2]) < int(m[1])):
            raise Unsatisfiable(f"malformed byte range {spec[:40]!r}")
        if m[3] is not None:  # the last n bytes
            if int(m[3]) > 0 and size > 0:
                wanted.append((max(0, size - int(m[3])), size - 1))
        elif int(m[1]) < size:
            wanted.append((int(m[1]), min(int(m[2]), size - 1) if m[2] else size - 1))
    if not wanted:
        raise Unsatisfiable(f"no byte range inside the file's {size} bytes")
    return wanted[0] if len(specs) == 1 else None


class ReviewApp:
    def __init__(self, out: str | Path, port: int = 0) -> None:
        self.out = Path(out).resolve()
        self._views = threading.Lock()
        self._stamp = self._manifest_stamp()
        self._view = ReviewView(self.out)
        self._local = threading.local()
        with Decisions(self.out):  # creates the file, or says in one line why it cannot
            pass
        self.token = secrets.token_urlsafe(24)
        self.port = port

    @property
    def view(self) -> ReviewView:
        """The view this request works with: one request sees one manifest from start to end."""
        return getattr(self._local, "view", None) or self._view

    def _manifest_stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.out / MANIFEST).stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _current_view(self) -> ReviewView:
        """OUT's view, built again when its manifest changed (an ``add`` or ``cluster`` while the page is open;
        the manifest is replaced whole, so a changed stamp is a finished one). A manifest that cannot be read
        now keeps the view the page has, and is read (and warned about) again only once it changes: not once per
        thumbnail."""
        stamp = self._manifest_stamp()
        with self._views:
            if stamp != self._stamp:
                try:
                    self._view = ReviewView(self.out)
                except ManifestError as exc:
                    log.warning("review: %s; the page keeps showing the previous run", exc)
                self._stamp = stamp
            return self._view

    # -- routing ----------------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> Response:
        self._local.view = self._current_view()
        url = urlsplit(target)
        path = url.path
        try:
            if method in ("GET", "HEAD"):  # the server sends no body for HEAD
                if path in ("/", "/index.html"):
                    return self._page()
                if path.startswith("/static/"):
                    return self._static(path.removeprefix("/static/"))
                if path.startswith("/files/"):
                    return self._file(path.removeprefix("/files/"))
                if path.startswith("/input/"):
                    return self._input(path.removeprefix("/input/"), headers)
                if path == "/api/people":
                    return self._people()
                if path.startswith("/api/people/"):
                    key, sep, track = unquote(path.removeprefix("/api/people/")).partition("/appearances/")
                    if sep:
                        return self._appearance(key, track, parse_qs(url.query))
                    return self._person(key, parse_qs(url.query))
                return _error(404, "not found")
            if method == "POST" and path == "/api/action":
                return self._action(headers, body)
            return _error(405, "method not allowed")
        except DecisionError as exc:
            return _error(400, str(exc))

    def _page(self) -> Response:
        html = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
        return Response(200, html.replace("__TOKEN__", self.token).encode(), _TYPES[".html"])

    def _static(self, name: str) -> Response:
        if name not in _STATIC:
            return _error(404, "not found")
        data = resources.files(__package__).joinpath(f"static/{name}").read_bytes()
        return Response(200, data, _TYPES[Path(name).suffix])

    def _file(self, raw: str) -> Response:
        rel = unquote(raw)
        if "\\" in rel or "\x00" in rel or not rel.startswith(_FILE_ROOTS) or Path(rel).suffix not in (".jpg", ".png"):
            return _error(404, "not found")
        path = (self.out / rel).resolve()
        if not path.is_relative_to(self.out) or not path.is_file():
            return _error(404, "not found")
        return Response(200, path.read_bytes(), _TYPES[path.suffix])

    def _input(self, raw: str, headers: Mapping[str, str]) -> Response:
        """The n-th input of the manifest, a video or a photo, whole or the byte range asked for."""
        if not re.fullmatch(r"[0-9]{1,9}", raw) or int(raw) >= len(self.view.inputs):  # a number, never a path
            return _error(404, "not found")
        entry = self.view.inputs[int(raw)]
        if entry.get("kind") not in ("video", "image") or not isinstance(entry.get("source"), str):
            return _error(404, "not found")
        name = Path(entry["source"]).name
        try:
            f = open(Path(entry["source"]).resolve(), "rb")  # noqa: SIM115 (the server streams it, then closes it)
            st = os.fstat(f.fileno())
        except OSError as exc:
            return _error(404, f"cannot read {name}: {exc.strerror or exc}; was it moved?")
        if not stat.S_ISREG(st.st_mode):
            f.close()
            return _error(404, f"cannot read {name}: not a file")
        size = st.st_size
        etag = f'"{size:x}-{st.st_mtime_ns:x}"'
        modified = formatdate(st.st_mtime, usegmt=True)
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        head = {"Accept-Ranges": "bytes", "ETag": etag, "Last-Modified": modified}
        wanted = headers.get("Range")
        if headers.get("If-Range") not in (None, etag, modified):  # the file changed since: send it whole
            wanted = None
        try:
            span = byte_range(wanted, size)
        except Unsatisfiable as exc:
            f.close()
            return Response(416, json.dumps({"error": str(exc)}).encode(),
                            headers={**head, "Content-Range": f"bytes */{size}"})
        if span is None:
            return Response(200, content_type=kind, headers=head, file=f, start=0, length=size)
        first, last = span
        return Response(206, content_type=kind, headers={**head, "Content-Range": f"bytes {first}-{last}/{size}"},
                        file=f, start=first, length=last - first + 1)

    def _people(self) -> Response:
        groups = self.view.current()
        return _json(200, {"people": [self.view.summary(g) for g in groups.values()]})

    def _person(self, key: str, query: dict[str, list[str]]) -> Response:
        """A person with a page of their appearances (those of one input with ``video``), and on the first page
        what the page shows above them."""
        groups = self.view.current()
        if key not in groups:
            return _error(404, f"no person {key!r}")
        offset, limit = _paging(query)
        g = groups[key]
        video = query.get("video", [None])[0] or None
        appearances = self.view.appearances(g, video)
        items = [self.view.appearance(a) for a in appearances[offset:offset + limit]]
        first = {}
        if offset == 0:
            first = {"timeline": self.view.timeline(g), "videos": self.view.videos(g),
                     "candidates": [{"key": k, "label": groups[k].label} for k in self.view.candidates(groups, key)]}
        return _json(200, {**self.view.summary(g), "appearances": len(appearances), "offset": offset,
                           "items": items, **first})

    def _appearance(self, key: str, track: str, query: dict[str, list[str]]) -> Response:
        """The faces of one of a person's appearances, a page of them."""
        groups = self.view.current()
        if key not in groups:
            return _error(404, f"no person {key!r}")
        members = self.view.find_appearance(groups[key], _track(track))
        if members is None:
            return _error(404, f"{groups[key].label} has no appearance {track[:40]!r}")
        offset, limit = _paging(query)
        return _json(200, {"track": int(track), "faces": len(members), "offset": offset,
                           "items": [self.view.face(int(i)) for i in members[offset:offset + limit]]})

    # -- changes ----------------------------------------------------------------------------------------------
    def _action(self, headers: Mapping[str, str], body: bytes) -> Response:
        if not secrets.compare_digest(headers.get("X-Review-Token", ""), self.token):
            return _error(403, "missing or wrong review token; reload the page")
        origin = headers.get("Origin")
        if origin and origin not in {f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"}:
            return _error(403, f"requests from {origin} are not accepted")
        if len(body) > MAX_BODY:
            return _error(413, "request too large")
        try:
            req = json.loads(body or b"null")
        except ValueError:
            return _error(400, "the request is not JSON")
        if not isinstance(req, dict) or not isinstance(req.get("action"), str):
            return _error(400, "the request needs an 'action'")
        groups = self.view.current()
        try:
            with Decisions(self.out) as d:
                result = self._do(d, groups, req)
        except sqlite3.OperationalError as exc:  # another process held the decisions' lock for 10 s
            return _error(503, f"the decisions could not be saved ({exc}); try again")
        return _json(200, {"ok": True, **result})

    def _do(self, d: Decisions, groups: dict[str, Group], req: dict) -> dict[str, Any]:
        action = req["action"]

        def faces_of(field: str) -> list[str]:
            key = req.get(field)
            if not isinstance(key, str) or key not in groups:
                raise DecisionError(f"{field}: no such person")
            return [self.view.keys[i] for i in groups[key].faces]

        def face_list(field: str) -> list[str]:
            value = req.get(field)
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                raise DecisionError(f"{field}: a list of faces is needed")
            unknown = [v for v in value if v not in self.view.index]
            if unknown:
                raise DecisionError(f"{field}: {len(unknown)} unknown face(s)")
            return value

        def selection() -> list[str]:
            """The faces an action is for: ``faces``, and every face of ``appearances`` (tracks) of ``person``,
            so that a whole appearance is one action and one step of undo."""
            faces = face_list("faces") if "faces" in req else []
            if "appearances" in req:
                tracks = req["appearances"]
                if not isinstance(tracks, list) or not tracks or len(tracks) > len(self.view.faces):
                    raise DecisionError("appearances: a list of appearances is needed")
                key = req.get("person")
                if not isinstance(key, str) or key not in groups:
                    raise DecisionError("person: no such person")
                for track in tracks:
                    members = self.view.find_appearance(groups[key], _track(track))
                    if members is None:
                        raise DecisionError(f"appearances: {groups[key].label} has no appearance {track!r}")
                    faces += [self.view.keys[i] for i in members]
            if not faces:
                raise DecisionError("faces: a list of faces is needed")
            return list(dict.fromkeys(faces))

        if action == "rename":
            name = req.get("name")
            if not isinstance(name, str):
                raise DecisionError("name: text is needed")
            return {"person": d.name(faces_of("person"), name)}
        if action == "merge":  # a person with itself: Decisions.merge refuses it, with that message
            return {"person": d.merge(faces_of("keep"), faces_of("other"))}
        if action == "move":
            target = None if req.get("target") is None else faces_of("target")
            return {"person": d.move(selection(), target)}
        if action == "not_a_face":
            d.mark_not_face(selection())
            return {}
        if action == "hide" and ("faces" in req or "appearances" in req):  # these faces: off to a hidden person
            return {"person": d.move(selection(), None, hidden=True)}
        if action == "hide":
            return {"person": d.hide(faces_of("person"), bool(req.get("hidden", True)))}
        if action == "cover":
            face = face_list("faces")[0]
            return {"person": d.set_cover(faces_of("person"), face)}
        if action == "undo":
            return {"undone": d.undo()}
        raise DecisionError(f"unknown action {action!r}")


def _paging(query: dict[str, list[str]]) -> tuple[int, int]:
    try:
        return (max(0, int(query.get("offset", ["0"])[0])),
                min(500, max(1, int(query.get("limit", ["200"])[0]))))
    except ValueError:
        raise DecisionError("offset and limit must be integers") from None


def _track(value: object) -> int:
    """An appearance's number as the page sends it (a track id: an integer, in the URL as text)."""
    # By its text alone: no other JSON value (true, 1.0, [1], null) has the text of an integer.
    if not re.fullmatch(r"-?\d{1,18}", str(value)):
        raise DecisionError(f"not an appearance: {str(value)[:40]!r}")
    return int(value)


class _Handler(BaseHTTPRequestHandler):
    app: ReviewApp  # set on the subclass made by serve()
    server_version = "person-cluster-review"

    def _reply(self, r: Response, method: str) -> None:
        try:
            self.send_response(r.status)
            self.send_header("Content-Type", r.content_type)
            self.send_header("Content-Length", str(r.length if r.file is not None else len(r.body)))
            for name, value in r.headers.items():
                self.send_header(name, value)
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy",
                             "default-src 'self'; img-src 'self'; media-src 'self'; frame-ancestors 'none'")
            self.end_headers()
            if method == "HEAD":
                return
            if r.file is not None:
                if r.length:  # from the file to the socket in the kernel (os.sendfile), never whole in memory
                    self.connection.sendfile(r.file, r.start, r.length)
            else:
                self.wfile.write(r.body)
        finally:
            if r.file is not None:
                r.file.close()

    def _serve(self, method: str) -> None:
        try:
            declared = (self.headers.get("Content-Length") or "0").strip()
            if not declared.isdigit():  # "abc", "-5", "1e3": a 400, not the 500 of a failed int()
                self._reply(_error(400, "Content-Length must be a number of bytes"), method)
                return
            length = int(declared)
            if length > MAX_BODY:
                self._reply(_error(413, "request too large"), method)
                return
            body = self.rfile.read(length)  # read(0) is b"" at once
            self._reply(self.app.handle(method, self.path, self.headers, body), method)
        except ConnectionError:  # the browser left the page (or seeked the video) while this was on its way
            log.debug("review: %s %s: connection closed by the browser", method, self.path)
        except Exception as exc:  # noqa: BLE001 (one line to the client and the log, never a traceback page)
            log.warning("review: %s %s failed: %s", method, self.path, exc)
            self._reply(_error(500, "internal error; see the terminal"), method)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("review: " + fmt, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog. socketserver's default of 5 drops the connections of a burst (a page's thumbnails, a
    # player's range requests, several tabs): 32 at once stalled by 1-2 s and some timed out after 10 s.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that leaves a page drops the connections of the images still loading: one debug line, not
        the traceback ``socketserver`` prints by default."""
        log.debug("review: connection from %s ended early", client_address)


def make_server(out: str | Path, port: int = 0) -> tuple[ThreadingHTTPServer, ReviewApp]:
    """A server on 127.0.0.1 (``port`` 0: a free one), not yet serving."""
    app = ReviewApp(out)
    handler = type("Handler", (_Handler,), {"app": app})
    try:
        server = _Server(("127.0.0.1", port), handler)
    except OSError as exc:
        raise DecisionError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})") from None
    app.port = server.server_address[1]
    return server, app
