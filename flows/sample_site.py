"""A local HTTP server for the bundled sample news site (demo and tests): real HTTP on 127.0.0.1."""

from __future__ import annotations

from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

from flows.localhttp import LocalServer
from tasks.settings import PROJECT_ROOT

SAMPLE_SITE = PROJECT_ROOT / "samples" / "site"
PLACEHOLDER = b"{{base_url}}"


class _SiteHandler(SimpleHTTPRequestHandler):
    """Serves files, with `{{base_url}}` in text files replaced by the server's own address."""

    def send_head(self):  # type: ignore[override]
        path = Path(self.translate_path(self.path))
        if not path.is_file() or path.suffix not in (".html", ".xml", ".txt"):
            return super().send_head()
        body = path.read_bytes().replace(PLACEHOLDER, self.server.base_url.encode())  # type: ignore[attr-defined]
        self.send_response(200)
        content_type = {".html": "text/html; charset=utf-8", ".xml": "application/rss+xml; charset=utf-8",
                        ".txt": "text/plain; charset=utf-8"}[path.suffix]
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        from io import BytesIO

        return BytesIO(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: the fetch log records requests
        pass


class SampleSite(LocalServer):
    """`with SampleSite() as site: site.base_url` serves the sample site on a free port of 127.0.0.1."""

    def __init__(self, directory: Path = SAMPLE_SITE, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(partial(_SiteHandler, directory=str(directory)), host, port, "sample-site")
        self.base_url = self.url


def main() -> None:
    """`python -m flows.sample_site --port 8000`: serve the sample site until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    site = SampleSite(port=args.port)
    site.run_until_interrupted(f"serving the sample news site at {site.base_url}")


if __name__ == "__main__":
    main()
