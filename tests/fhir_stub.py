"""A stub FHIR server on 127.0.0.1 (a real HTTP server in a thread) for the prefetch-fetch path."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class StubFhir:
    """Serves `routes` (path without query, or path?query -> resource); records every request."""

    def __init__(self, routes: dict, status: int = 200):
        self.routes = routes
        self.status = status
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                stub.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                                      "accept": self.headers.get("Accept")})
                parts = urlsplit(self.path)
                body = stub.routes.get(self.path, stub.routes.get(parts.path))
                if stub.status != 200 or body is None:
                    self.send_response(stub.status if stub.status != 200 else 404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/fhir"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
