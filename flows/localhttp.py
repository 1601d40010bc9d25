"""A threaded HTTP server on 127.0.0.1, for the sample site and the Data Docs: started and stopped with
`with`, or run until interrupted as a process of its own (`newsflow up` stops those with SIGTERM)."""

from __future__ import annotations

import contextlib
import signal
import threading
from http.server import ThreadingHTTPServer
from typing import Any


class LocalServer:
    """`with LocalServer(handler) as server: server.url`; port 0 takes a free one."""

    def __init__(self, handler: Any, host: str = "127.0.0.1", port: int = 0, name: str = "http") -> None:
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.server.base_url = self.url  # type: ignore[attr-defined]  (handlers may need their address)
        self._thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def run_until_interrupted(self, *lines: str) -> None:
        """Serve, print `lines`, and stop on Ctrl-C or SIGTERM."""
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with self:
            for line in lines:
                print(line, flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()


