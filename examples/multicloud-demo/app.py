"""The demo application: every GET is answered "Hello World from <name>".

Run on a node by the demo's start script, with NODE_NAME, BIND (the node's
own address) and PORT in its environment.
"""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("NODE_NAME", "somewhere")


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"Hello World from {NAME}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    address = os.environ.get("BIND", "0.0.0.0")
    ThreadingHTTPServer((address, int(os.environ.get("PORT", "8080"))), Hello).serve_forever()
