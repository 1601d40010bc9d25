"""Data Docs a person can open: built by a real run, they load nothing from the internet, every asset they
name exists in the project, they are served over HTTP on 127.0.0.1, and the run links them there."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import httpx

from flows.docs_server import DocsServer, runs_page
from tasks.datadocs import CDN_FILES, docs_link, localize_html
from tasks.settings import PROJECT_ROOT, Settings, get_settings

BIN = Path(sys.executable).parent
# What makes a browser fetch as a page loads: src of scripts, images, frames; href of style sheets and icons;
# url() in styles.
LOADED = re.compile(r"""<(?:script|img|iframe|source)\b[^>]*\bsrc=["']([^"']+)["']"""
                    r"""|<link\b(?=[^>]*\brel=["']?[^"'>]*(?:stylesheet|icon))[^>]*\bhref=["']([^"']+)["']"""
                    r"""|url\(["']?([^"')]+)["']?\)""", re.IGNORECASE)


def loaded_urls(text: str) -> list[str]:
    return [next(g for g in match.groups() if g) for match in LOADED.finditer(text)]


def built_site(prefect_server, tmp_path: Path, monkeypatch, docs_url: str | None) -> tuple[dict, Path]:
    """Run the flow on two sample texts; the run's id and its Data Docs root."""
    from flows.ingest import ingest_news

    root = tmp_path / "docs"
    monkeypatch.setenv("NEWSFLOW_DATA_DOCS_DIR", str(root))
    if docs_url:
        monkeypatch.setenv("NEWSFLOW_DATA_DOCS_URL", docs_url)
    get_settings.cache_clear()
    inbox = tmp_path / "in"
    inbox.mkdir()
    for name in ("ferry-strike.txt", "council-budget.txt"):
        shutil.copy(PROJECT_ROOT / "samples" / "texts" / name, inbox / name)
    try:
        state = ingest_news(sources=[{"name": "t", "kind": "files", "path": str(inbox / "*.txt")}],
                            warehouse_url=f"sqlite:///{tmp_path / 'w.db'}", return_state=True)
    finally:
        get_settings.cache_clear()
    return {"state": state, "run_id": state.result()["run_id"]}, root


def artifact_link(flow_run_id) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), key=ArtifactFilterKey(any_=["data-docs"])))
    return re.fullmatch(r"\[.*\]\((.*)\)", artifact.data).group(1)  # stored as markdown: [text](link)


def test_a_runs_data_docs_load_only_local_files_and_are_served_where_its_artifact_links(
        prefect_server, tmp_path, monkeypatch):
    with DocsServer(tmp_path / "docs") as server:
        run, root = built_site(prefect_server, tmp_path, monkeypatch, server.url)
        site = root / run["run_id"]
        pages = [*site.rglob("*.html"), *(site / "static").rglob("*.css")]
        assert len(pages) > 5
        for page in pages:
            for url in loaded_urls(page.read_text(encoding="utf-8")):
                assert not re.match(r"(https?:)?//", url), f"{page.relative_to(site)} loads {url}"
                if not url.startswith(("data:", "#")):
                    assert (page.parent / url.split("?")[0]).resolve().is_file(), f"{page} names {url}: missing"
        index = (site / "index.html").read_text(encoding="utf-8")
        assert "_assets/bootstrap-table/dist/bootstrap-table.min.js" in index  # the table of validations
        assert "integrity=" not in index  # a hash of the CDN's copy would block the local one

        link = artifact_link(run["state"].state_details.flow_run_id)
        assert link == f"{server.url}/{run['run_id']}/index.html"
        with httpx.Client(timeout=30) as http:
            page = http.get(link)
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            for url in loaded_urls(page.text):
                if not url.startswith("data:"):
                    assert http.get(urljoin(link, url)).status_code == 200, url
            front = http.get(server.url + "/")
            assert front.status_code == 200 and f'href="{run["run_id"]}/index.html"' in front.text


def test_without_a_docs_server_the_artifact_links_the_file(prefect_server, tmp_path, monkeypatch):
    monkeypatch.delenv("NEWSFLOW_DATA_DOCS_URL", raising=False)
    run, root = built_site(prefect_server, tmp_path, monkeypatch, None)
    assert artifact_link(run["state"].state_details.flow_run_id) == (root / run["run_id"] / "index.html").as_uri()


def test_every_cdn_asset_of_the_templates_has_a_local_copy_and_nothing_else_is_fetched(tmp_path):
    """Every URL Great Expectations' templates load is in CDN_FILES, its copy installed; others are blanked."""
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    named = {url for t in templates.glob("*.j2") for url in loaded_urls(t.read_text(encoding="utf-8"))
             if url.startswith("http")}
    assert named and all(url in CDN_FILES or "great-expectations-web-assets" in url for url in named), named
    assets = get_settings().data_docs_assets_dir
    for relative in CDN_FILES.values():
        assert (assets / relative).is_file(), f"{relative}: run `make install`"

    page = ('<link rel="stylesheet" href="https://unpkg.com/other.css"><link rel="canonical" href="https://x.org/">'
            '<script src="//cdn.example/x.js" integrity="sha384-x" crossorigin="anonymous"></script>'
            '<a href="https://greatexpectations.io">GX</a><div style="background: url(\'https://x.org/i.png\')">')
    text, dropped = localize_html(page, tmp_path / "a" / "b", tmp_path, tmp_path / "_assets")
    assert loaded_urls(text) == ["data:,", "data:,", "data:,"]
    assert 'rel="canonical" href="https://x.org/"' in text and 'href="https://greatexpectations.io"' in text
    assert sorted(dropped) == ["https://cdn.example/x.js", "https://unpkg.com/other.css", "https://x.org/i.png"]


def test_docs_link_is_the_file_unless_a_server_serves_the_folder(tmp_path):
    index = tmp_path / "docs" / "run-1" / "index.html"
    assert docs_link(Settings(data_docs_dir=tmp_path / "docs"), index) == index.as_uri()
    served = Settings(data_docs_dir=tmp_path / "docs", data_docs_url="http://127.0.0.1:4280/")
    assert docs_link(served, index) == "http://127.0.0.1:4280/run-1/index.html"
    assert docs_link(served, tmp_path / "elsewhere" / "index.html").startswith("file://")


def test_the_front_page_lists_runs_newest_first(tmp_path):
    for name, stamp in (("old-run", 1_000), ("new-run", 2_000)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.html").write_text("<html></html>")
        os.utime(tmp_path / name / "index.html", (stamp, stamp))
    (tmp_path / "_assets").mkdir()
    page = runs_page(tmp_path)
    assert page.index("new-run/index.html") < page.index("old-run/index.html") and "_assets" not in page
    assert "No run" in runs_page(tmp_path / "nothing")


def test_newsflow_docs_serves_the_folder_on_loopback(tmp_path):
    (tmp_path / "run-1").mkdir()
    (tmp_path / "run-1" / "index.html").write_text("<html><body>checks</body></html>")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([BIN / "newsflow", "docs", "--dir", str(tmp_path), "--port", str(port)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert f"at http://127.0.0.1:{port}/" in process.stdout.readline()
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/run-1/index.html", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert page.status_code == 200 and "checks" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
