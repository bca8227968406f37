"""Replay the constructed Materials Project recording (data/mp_summary_mp-22862.json) below the
mp-api client, so that its real code path (session, query parameters, JSON parsing, emmet
document model, Structure) runs without a network.

In-process: :class:`RecordedTransport` replaces ``requests.adapters.HTTPAdapter.send``, the call
through which every request of ``requests`` (``requests.get`` and ``Session.get``) goes.
Other processes (the CLI): :func:`serve` answers on a local HTTP port; point the client at it
with ``MP_API_ENDPOINT``.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

RECORDING = Path(__file__).parent / "data" / "mp_summary_mp-22862.json"
#: a made-up key of the right form (mp-api checks for 32 characters)
FAKE_KEY = "abcdefghijklmnopqrstuvwxyz012345"


def recording() -> dict:
    return json.loads(RECORDING.read_text())


def answer(path: str, query: dict[str, list[str]], mode: str = "ok") -> tuple[int, dict]:
    """Status and JSON body the recorded server gives for a GET of ``path``.

    ``mode``: ``ok``; ``refuse-key`` (403 on data queries, as a gateway answers a bad key);
    anything else is handled by the caller (no network).
    """
    rec = recording()
    if path.rstrip("/").endswith("heartbeat"):
        return 200, rec["heartbeat"]
    if path.rstrip("/").endswith("materials/summary"):
        if mode == "refuse-key":
            return 403, {"detail": "constructed: invalid API key"}
        ids = ",".join(query.get("material_ids", [])).split(",")
        if rec["material_id"] in ids:
            return 200, rec["summary"]
        return 200, {"data": [], "meta": {"total_doc": 0}}  # a search without a match
    return 404, {"detail": f"constructed recording has no route {path}"}


@dataclass
class RecordedTransport:
    """Stand-in for ``HTTPAdapter.send``; ``requests`` lists what the client sent."""

    mode: str = "ok"
    requests: list = field(default_factory=list)

    def send(self, adapter, request, **kwargs):
        import requests

        self.requests.append(request)
        url = urlsplit(request.url)
        offline = self.mode == "offline" or (
            self.mode == "offline-after-heartbeat" and not url.path.endswith("heartbeat")
        )
        if offline:
            raise requests.exceptions.ConnectionError(
                f"constructed: no route to host {url.hostname}", request=request
            )
        status, body = answer(url.path, parse_qs(url.query), self.mode)
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        return response


@contextmanager
def serve(mode: str = "ok"):
    """A local HTTP server answering like :func:`answer`; yields its base URL."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlsplit(self.path)
            seen.append(self.path)
            status, body = answer(url.path, parse_qs(url.query), mode)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
