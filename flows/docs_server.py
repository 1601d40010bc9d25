"""The runs' Data Docs over HTTP on 127.0.0.1 (`newsflow docs`, and `newsflow up`): a browser opens an
http link from the Prefect UI, not a file:// one."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler
from io import BytesIO
from pathlib import Path

from flows.localhttp import LocalServer
from tasks.datadocs import ASSETS_DIRNAME


def runs_page(root: Path) -> str:
    """The front page: every run's Data Docs site in `root`, newest first."""
    sites = sorted((d for d in root.iterdir() if d.name != ASSETS_DIRNAME and (d / "index.html").is_file()),
                   key=lambda d: (d / "index.html").stat().st_mtime, reverse=True) if root.is_dir() else []
    rows = "".join(
        f'<li><a href="{html.escape(d.name)}/index.html">{html.escape(d.name)}</a> '
        f"<small>built {datetime.fromtimestamp((d / 'index.html').stat().st_mtime, UTC):%Y-%m-%d %H:%M:%S} UTC"
        "</small></li>" for d in sites)
    body = f"<ol>{rows}</ol>" if rows else "<p>No run has built its Data Docs here yet.</p>"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>newsflow Data Docs</title>"
            "</head><body style=\"font-family: sans-serif\"><h1>newsflow Data Docs</h1>"
            f"<p>One Great Expectations site per run, newest first ({html.escape(str(root))}).</p>{body}"
            "</body></html>")


class _DocsHandler(SimpleHTTPRequestHandler):
    """Files of the Data Docs folder; `/` lists the runs."""

    def send_head(self):  # type: ignore[override]
        if self.path.split("?", 1)[0] not in ("/", "/index.html"):
            return super().send_head()
        body = runs_page(Path(self.directory)).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return BytesIO(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: a page loads a dozen files
        pass


class DocsServer(LocalServer):
    """`with DocsServer(root) as server: server.url` serves the Data Docs folder on 127.0.0.1."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        super().__init__(partial(_DocsHandler, directory=str(root)), host, port, "data-docs")


def serve_forever(root: Path, port: int) -> None:
    """Serve until interrupted (Ctrl-C, or SIGTERM from `newsflow down`)."""
    server = DocsServer(root, port=port)
    server.run_until_interrupted(
        f"serving the Data Docs of {root} at {server.url}/  (Ctrl-C stops)",
        f"runs link their data-docs artifact here with NEWSFLOW_DATA_DOCS_URL={server.url}")


def main() -> None:
    """`python -m flows.docs_server --dir DIR --port PORT`: serve the Data Docs folder until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve_forever(args.dir.resolve(), args.port)


if __name__ == "__main__":
    main()
