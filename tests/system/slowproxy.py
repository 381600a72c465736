"""A loopback HTTP proxy in front of a test registry that serves manifests at full speed and
blobs slowly, so a pull can be interrupted mid-way. Bounded: it serves only 127.0.0.1 and stops
with the test."""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlowRegistryProxy:
    def __init__(self, upstream: str, chunk: int = 16384, delay: float = 0.05) -> None:
        host, port = upstream.split(":")
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self, with_body: bool) -> None:
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.putrequest(self.command, self.path, skip_accept_encoding=True)
                for k, v in self.headers.items():  # every header, repeated ones (Accept) included
                    if k.lower() not in ("host", "connection"):
                        conn.putheader(k, v)
                conn.endheaders()
                resp = conn.getresponse()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Connection", "close")
                self.end_headers()
                slow = "/blobs/" in self.path
                try:
                    while with_body and not proxy.stopped.is_set():
                        data = resp.read(chunk)
                        if not data:
                            break
                        self.wfile.write(data)
                        if slow:
                            proxy.blob_bytes += len(data)
                            time.sleep(delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    conn.close()

            def do_GET(self) -> None:
                self._forward(True)

            def do_HEAD(self) -> None:
                self._forward(False)

        self.stopped = threading.Event()
        self.blob_bytes = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "SlowRegistryProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()
