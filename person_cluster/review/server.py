"""``person-cluster review OUT``: a local page to name, merge, split and correct the people of a run.

Standard library only (``http.server``), bound to 127.0.0.1, everything it serves bundled in the package (the
machine may be offline). :class:`ReviewApp` maps a request to a response and is what the tests call; the HTTP
server only carries bytes. Its rules:

- files: only images under ``people/``, ``montages/`` and ``timelines/`` of OUT, checked after resolving (``..``,
  absolute paths, encoded slashes and symlinks that lead out are refused with 404);
- changes: ``POST /api/action`` with the page's per-session token in ``X-Review-Token`` and, when the browser sends
  one, an ``Origin`` of this server; anything else is refused with 403, so another site cannot act for the user;
- malformed requests get a 4xx with a one-line message; a decision is one transaction (see :mod:`.decisions`).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .decisions import DecisionError, Decisions
from .view import ReviewView

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
_FILE_ROOTS = ("people/", "montages/", "timelines/")
_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8"}
_STATIC = ("app.js", "app.css")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"


def _json(status: int, value: Any) -> Response:
    return Response(status, json.dumps(value, ensure_ascii=False).encode())


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


class ReviewApp:
    def __init__(self, out: str | Path, port: int = 0) -> None:
        self.out = Path(out).resolve()
        self.view = ReviewView(self.out)
        with Decisions(self.out):  # creates the file, or says in one line why it cannot
            pass
        self.token = secrets.token_urlsafe(24)
        self.port = port

    # -- routing ----------------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> Response:
        url = urlsplit(target)
        path = url.path
        try:
            if method == "GET":
                if path in ("/", "/index.html"):
                    return self._page()
                if path.startswith("/static/"):
                    return self._static(path.removeprefix("/static/"))
                if path.startswith("/files/"):
                    return self._file(path.removeprefix("/files/"))
                if path == "/api/people":
                    return self._people()
                if path.startswith("/api/people/"):
                    return self._person(unquote(path.removeprefix("/api/people/")), parse_qs(url.query))
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

    def _people(self) -> Response:
        with Decisions(self.out) as d:
            groups = self.view.groups(d)
        return _json(200, {"people": [self.view.summary(g) for g in groups.values()]})

    def _person(self, key: str, query: dict[str, list[str]]) -> Response:
        with Decisions(self.out) as d:
            groups = self.view.groups(d)
        if key not in groups:
            return _error(404, f"no person {key!r}")
        try:
            offset = max(0, int(query.get("offset", ["0"])[0]))
            limit = min(500, max(1, int(query.get("limit", ["200"])[0])))
        except ValueError:
            return _error(400, "offset and limit must be integers")
        g = groups[key]
        faces = [self.view.face(i) for i in g.faces[offset:offset + limit]]
        candidates = [{"key": k, "label": groups[k].label} for k in self.view.candidates(groups, key)]
        return _json(200, {**self.view.summary(g), "offset": offset, "items": faces, "candidates": candidates,
                           "timeline": self.view.timeline(g) if offset == 0 else []})

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
        with Decisions(self.out) as d:
            groups = self.view.groups(d)
            result = self._do(d, groups, req)
        return _json(200, {"ok": True, **result})

    def _do(self, d: Decisions, groups: dict, req: dict) -> dict[str, Any]:
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

        if action == "rename":
            name = req.get("name")
            if not isinstance(name, str):
                raise DecisionError("name: text is needed")
            return {"person": d.name(faces_of("person"), name)}
        if action == "merge":
            if req.get("keep") == req.get("other"):
                raise DecisionError("cannot merge a person with itself")
            return {"person": d.merge(faces_of("keep"), faces_of("other"))}
        if action == "move":
            target = None if req.get("target") is None else faces_of("target")
            return {"person": d.move(face_list("faces"), target)}
        if action == "not_a_face":
            d.mark_not_face(face_list("faces"))
            return {}
        if action == "hide":
            return {"person": d.hide(faces_of("person"), bool(req.get("hidden", True)))}
        if action == "cover":
            face = face_list("faces")[0]
            return {"person": d.set_cover(faces_of("person"), face)}
        if action == "undo":
            return {"undone": d.undo()}
        raise DecisionError(f"unknown action {action!r}")


class _Handler(BaseHTTPRequestHandler):
    app: ReviewApp  # set on the subclass made by serve()
    server_version = "person-cluster-review"

    def _reply(self, r: Response) -> None:
        self.send_response(r.status)
        self.send_header("Content-Type", r.content_type)
        self.send_header("Content-Length", str(len(r.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self'; frame-ancestors 'none'")
        self.end_headers()
        self.wfile.write(r.body)

    def _serve(self, method: str) -> None:
        try:
            declared = (self.headers.get("Content-Length") or "0").strip()
            if not declared.isdigit():  # "abc", "-5", "1e3": a 400, not the 500 of a failed int()
                self._reply(_error(400, "Content-Length must be a number of bytes"))
                return
            length = int(declared)
            if length > MAX_BODY:
                self._reply(_error(413, "request too large"))
                return
            body = self.rfile.read(length) if length > 0 else b""
            self._reply(self.app.handle(method, self.path, self.headers, body))
        except ConnectionError:  # the browser left the page while this image was on its way
            log.debug("review: %s %s: connection closed by the browser", method, self.path)
        except Exception as exc:  # noqa: BLE001 (one line to the client and the log, never a traceback page)
            log.warning("review: %s %s failed: %s", method, self.path, exc)
            self._reply(_error(500, "internal error; see the terminal"))

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("review: " + fmt, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

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
