"""An HTTP proxy that flips one byte of bodies going in or out, to prove that
corruption by a peer is caught; it can also refuse requests (``check``), to
stand in for an authentication a peer's emulator does not do."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


def flip_middle_byte(data: bytes) -> bytes:
    """``data`` with one bit of its middle byte flipped (in the payload of a
    multipart body too, past its headers)."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]


#: Decides on a request's method, path and headers: None to forward it, or a status.
Check = Callable[[str, str, dict[str, str]], int | None]


class CorruptingProxy:
    """Forwards HTTP to ``target``, flipping one byte of request or response bodies."""

    def __init__(self, target: str, check: Check | None = None) -> None:
        self.target = target
        self.check = check
        self.corrupt_requests = False
        self.corrupt_responses = False
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                refused = proxy.check and proxy.check(self.command, self.path, dict(self.headers))
                if refused:
                    self.send_response(refused)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy.corrupt_requests and len(body) > 100:
                    body = flip_middle_byte(body)
                answer = requests.request(
                    self.command,
                    proxy.target + self.path,
                    headers=dict(self.headers),
                    data=body,
                    timeout=60,
                    allow_redirects=False,
                )
                content = answer.content
                kind = answer.headers.get("Content-Type", "")
                if (
                    proxy.corrupt_responses
                    and self.command == "GET"
                    and len(content) > 100
                    and not kind.startswith(("application/json", "application/xml"))
                ):  # object data, not the provider's own answers
                    content = flip_middle_byte(content)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                length = len(content)
                if self.command == "HEAD":  # a HEAD answer has no body but the object's length
                    length = int(answer.headers.get("Content-Length") or 0)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CorruptingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
