"""Real HTTP servers on 127.0.0.1 for the weights tests: a faulty mirror and a Hub-protocol endpoint.

One :class:`FaultServer` serves plain mirror paths and Hugging Face ``/{repo}/resolve/{commit}/{file}``
paths (HEAD with ``X-Repo-Commit``, ``ETag``, ``Content-Length``; GET honouring ``Range``; a
missing file is a 404 with ``X-Error-Code: EntryNotFound``), the few Hub API routes an upload
uses (create repo, validate README, preupload, commit), and the repo record ``model_info`` reads
(``/api/models/{repo}/revision/{rev}?blobs=true``: the commit, and per file its size, git blob id
and, for ``.safetensors`` files as on the Hub, an LFS sha256, all taken when the commit was made).
A commit also moves the repo's ``main``. Each path can misbehave in one way:

    ok          the file, honouring Range
    truncate    announces the whole length, sends half of what was asked, closes
    drop_once   the first GET sends half and drops the connection; later GETs are fine
    stall       sends a quarter, then sends nothing (until the server stops)
    trickle     sends one byte every 20 ms
    slow        spreads the body over ``seconds`` (in 50 pieces)
    status500   answers 500
    no_length   sends the bytes with no Content-Length, ending at connection close
"""
import base64
import hashlib
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple

SLOW_PIECES = 50


@dataclass
class Served:
    data: bytes
    mode: str = "ok"
    commit: Optional[str] = None  # set for Hub resolve paths
    seconds: float = 0.0  # how long a "slow" body takes
    gets: int = 0


@dataclass
class RequestRecord:
    method: str
    path: str
    range: Optional[str]
    status: int


@dataclass
class ServerState:
    files: Dict[str, Served] = field(default_factory=dict)
    log: List[RequestRecord] = field(default_factory=list)
    commits: List[Tuple[str, Dict[str, bytes]]] = field(default_factory=list)
    records: Dict[Tuple[str, str], dict] = field(default_factory=dict)  # (repo, commit or "main") -> model_info
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


def _pacing(served: Served, size: int) -> Tuple[int, float]:
    """(bytes per write, seconds between writes) of a body in ``served.mode``."""
    if served.mode == "trickle":
        return 1, 0.02
    if served.mode == "slow":
        return max(1, -(-size // SLOW_PIECES)), served.seconds / SLOW_PIECES
    return max(1, size), 0.0


class _Handler(BaseHTTPRequestHandler):
    server_version = "vader-test/1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    @property
    def state(self) -> ServerState:
        return self.server.state  # type: ignore[attr-defined]

    def _record(self, status: int) -> None:
        with self.state.lock:
            self.state.log.append(RequestRecord(self.command, self.path, self.headers.get("Range"), status))

    def _json(self, status: int, payload: dict, headers: Optional[dict] = None) -> None:
        body = json.dumps(payload).encode()
        self._record(status)
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", "Content-Length": str(len(body)),
                           **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _missing(self) -> None:
        headers = {"X-Error-Code": "EntryNotFound"} if "/resolve/" in self.path else {}
        self._json(404, {"error": "not found"}, headers)

    def _range_start(self, size: int) -> Optional[int]:
        wanted = self.headers.get("Range")
        if not wanted:
            return 0
        start = int(wanted.split("=", 1)[1].split("-", 1)[0])
        return start if start < size else None

    def _headers_for(self, served: Served, start: int) -> None:
        size = len(served.data)
        self.send_response(206 if start else 200)
        if served.mode != "no_length":
            self.send_header("Content-Length", str(size - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Accept-Ranges", "bytes")
        if served.commit:
            self.send_header("X-Repo-Commit", served.commit)
            self.send_header("ETag", f'"{hashlib.sha256(served.data).hexdigest()}"')
        self.end_headers()

    def _serve(self, with_body: bool) -> None:
        served = self.state.files.get(self.path.split("?")[0])
        if served is None:
            return self._missing()
        if served.mode == "status500":
            return self._json(500, {"error": "internal error"})
        start = self._range_start(len(served.data))
        if start is None:
            return self._json(416, {"error": "range not satisfiable"})
        with self.state.lock:
            served.gets += with_body
            first_get = served.gets == 1
        self._record(206 if start else 200)
        self._headers_for(served, start)
        if with_body:
            self._send_body(served, served.data[start:], first_get)

    def _send_body(self, served: Served, body: bytes, first_get: bool) -> None:
        mode = served.mode
        if mode == "truncate" or (mode == "drop_once" and first_get):
            self.wfile.write(body[: len(body) // 2])
            return self._drop()
        if mode == "stall":
            self.wfile.write(body[: len(body) // 4])
            self.wfile.flush()
            self.state.stopping.wait(30)
            return self._drop()
        step, pause = _pacing(served, len(body))
        for offset in range(0, len(body), step):
            if self.state.stopping.is_set():
                return self._drop()
            self.wfile.write(body[offset: offset + step])
            self.wfile.flush()
            time.sleep(pause)

    def _drop(self) -> None:
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[:2] == ["api", "models"] and (len(parts) == 4 or len(parts) == 6 and parts[4] == "revision"):
            record = self.state.records.get((f"{parts[2]}/{parts[3]}", parts[5] if len(parts) == 6 else "main"))
            return self._json(200, record) if record else self._json(404, {"error": "Revision Not Found"},
                                                                       {"X-Error-Code": "RevisionNotFound"})
        self._serve(with_body=True)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[:3] == ["api", "repos", "create"]:
            name = json.loads(body)
            repo_id = f"{name.get('organization') or 'user'}/{name['name']}"
            return self._json(200, {"url": f"http://{self.headers['Host']}/{repo_id}", "name": repo_id})
        if parts[:2] == ["api", "validate-yaml"]:
            return self._json(200, {"errors": [], "warnings": []})
        if len(parts) >= 6 and parts[0] == "api" and parts[4] == "preupload":
            files = json.loads(body)["files"]
            return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                              for f in files]})
        if len(parts) >= 6 and parts[0] == "api" and parts[4] == "commit":
            return self._commit(f"{parts[2]}/{parts[3]}", body)
        return self._missing()

    def _commit(self, repo_id: str, body: bytes) -> None:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        files = {item["value"]["path"]: base64.b64decode(item["value"]["content"])
                 for item in lines if item["key"] == "file"}
        commit = hashlib.sha1(body).hexdigest()
        with self.state.lock:
            self.state.commits.append((repo_id, files))
            for path, data in files.items():
                for revision in (commit, "main"):
                    self.state.files[f"/{repo_id}/resolve/{revision}/{path}"] = Served(data, commit=commit)
            record = _repo_record(repo_id, commit, files)
            self.state.records[(repo_id, commit)] = self.state.records[(repo_id, "main")] = record
        url = f"http://{self.headers['Host']}/{repo_id}/commit/{commit}"
        self._json(200, {"commitUrl": url, "commitOid": commit, "success": True})


def _repo_record(repo_id: str, commit: str, files: Dict[str, bytes]) -> dict:
    """What the Hub's API says of a commit's files; ``.safetensors`` files are LFS files there."""
    siblings = []
    for path, data in files.items():
        sibling = {"rfilename": path, "size": len(data),
                   "blobId": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
        if path.endswith(".safetensors"):
            sibling["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
        siblings.append(sibling)
    return {"id": repo_id, "modelId": repo_id, "sha": commit, "siblings": siblings, "private": False}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up mid-body (a killed process, a size cap) is expected here, not an error."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class FaultServer:
    """A threaded HTTP server on 127.0.0.1 with per-path faults; stop it with :meth:`close`."""

    def __init__(self) -> None:
        self.state = ServerState()
        self.httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self.httpd.state = self.state  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, data: bytes, mode: str = "ok", seconds: float = 0.0) -> str:
        """Serve ``data`` at ``path`` (a "slow" body takes ``seconds``); returns its URL."""
        self.state.files[path] = Served(data, mode, seconds=seconds)
        return self.base_url + path

    def add_hf(self, repo_id: str, commit: str, filename: str, data: bytes, mode: str = "ok") -> None:
        """Serve ``data`` as ``filename`` of ``repo_id`` at ``commit`` through the resolve protocol."""
        self.state.files[f"/{repo_id}/resolve/{commit}/{filename}"] = Served(data, mode, commit=commit)

    def requests_for(self, path: str, method: str = "GET") -> List[RequestRecord]:
        with self.state.lock:
            return [r for r in self.state.log if r.path.split("?")[0] == path and r.method == method]

    def close(self) -> None:
        self.state.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
