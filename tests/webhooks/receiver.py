"""A real HTTPS webhook receiver for the tests: a small threaded server on 127.0.0.1 with
the development certificate (vouch.web.tls), answering as each test scripts it and
keeping every request it got (headers and body, byte for byte)."""

from __future__ import annotations

import ssl
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from vouch.web.tls import ensure_dev_certificate


@dataclass
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Seconds to wait before answering at all.
    delay: float = 0.0
    # Send this many bytes of body (declared in Content-Length), in 64 KiB writes.
    body_size: int = 0
    # Send the body one byte per this many seconds.
    drip: float = 0.0
    # Close the connection after answering without saying so (as a receiver's idle
    # timeout does): the sender only learns it when it next uses the connection.
    hang_up: bool = False


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="vouch-receiver-"))
        self.cert_path, self.key_path = ensure_dev_certificate(self.directory)
        self.received: list[Received] = []
        self.answers: deque[Answer] = deque()
        self.default = Answer()
        self.bytes_written = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    answer = receiver.answers.popleft() if receiver.answers else receiver.default
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                size = answer.body_size or len(answer.body)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                try:
                    if answer.drip:
                        for _ in range(size):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                            receiver.bytes_written += 1
                            time.sleep(answer.drip)
                    elif answer.body_size:
                        chunk = b"x" * 65536
                        for _ in range(answer.body_size // len(chunk)):
                            self.wfile.write(chunk)
                            receiver.bytes_written += len(chunk)
                    else:
                        self.wfile.write(answer.body)
                except OSError:
                    self.close_connection = True  # the sender hung up: what the cap does
                if answer.hang_up:
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)

    def url(self, path: str = "/hooks", host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, *answers: Answer) -> None:
        with self.lock:
            self.answers.extend(answers)
