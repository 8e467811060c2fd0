"""A real HTTP server on 127.0.0.1 for source tests: routes are plain functions, faults included."""

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop_connection: bool = False  # close the socket without answering (connection reset)
    declared_length: int | None = None  # a Content-Length larger than the body: a truncated download
    chunk_delay: float = 0.0  # seconds between 8 slices of the body: a server that trickles
    delay: float = 0.0  # seconds of silence before the answer: a server that times out


Route = Callable[[BaseHTTPRequestHandler], Reply]


class LocalServer:
    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                path = urlsplit(self.path).path
                server.hits[path] += 1
                route = server.routes.get(path)
                reply = route(self) if route else Reply(404, b"not found")
                time.sleep(reply.delay)
                if reply.drop_connection:
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(reply.declared_length or len(reply.body)))
                self.end_headers()
                if reply.chunk_delay:
                    step = max(1, len(reply.body) // 8)
                    for i in range(0, len(reply.body), step):
                        self.wfile.write(reply.body[i:i + step])
                        self.wfile.flush()
                        time.sleep(reply.chunk_delay)
                else:
                    self.wfile.write(reply.body)
                if reply.declared_length:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that gave up (timeout, size limit) is the point of the test, not a server error

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def static(body: bytes, etag: str | None = None, content_type: str = "text/csv") -> Route:
    """A file with an ETag that answers 304 to a matching If-None-Match."""
    def route(req: BaseHTTPRequestHandler) -> Reply:
        if etag and req.headers.get("If-None-Match") == etag:
            return Reply(304)
        return Reply(200, body, {"Content-Type": content_type, **({"ETag": etag} if etag else {})})
    return route


def failing_then(route: Route, failures: list[Reply]) -> Route:
    """Answer with each of ``failures`` in turn, then behave like ``route``."""
    pending = list(failures)

    def wrapped(req: BaseHTTPRequestHandler) -> Reply:
        return pending.pop(0) if pending else route(req)
    return wrapped
