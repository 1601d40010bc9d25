"""Great Expectations Data Docs a person can open offline: the pages' scripts, styles, fonts and logos come
from the project (npm packages installed by `make install`) instead of public CDNs, and a run's site is
linked by its http address when a docs server serves it (`newsflow docs`)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from sqlalchemy.engine import make_url

from tasks.settings import Settings

ASSETS_DIRNAME = "_assets"  # beside the runs' sites: copied once, shared by every run

# What Great Expectations 1.24's page templates load from CDNs -> the same file in the npm packages of
# assets/package.json (same versions; popper.js 1.16.1, the 1.x bootstrap 4.3.1 asks for, for 1.12.9).
CDN_FILES = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        "@fortawesome/fontawesome-free/css/all.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        "bootstrap-table/dist/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        "bootstrap-table/dist/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.css",
}
# Folders a copied file needs beside it (Font Awesome's CSS loads ../webfonts/).
CDN_DIRS = ("@fortawesome/fontawesome-free/webfonts",)
# The logos come from Great Expectations' web-assets bucket (with a cache-busting query); the site's own
# static/ has the same long logo.
_LOGO = re.compile(r"https://great-expectations-web-assets\.[a-z0-9.-]+/[A-Za-z0-9_-]+\.(?:png|svg)(?:\?[^\"']*)?")
LOCAL_LOGO = "static/images/logo-long.png"
# Tags whose src/href the browser fetches as the page loads (a <link> only as a stylesheet, icon or
# preload), their external URL attributes, and CSS url(...) pointing outside.
_TAG = re.compile(r"<(script|img|iframe|source|link)\b[^>]*>", re.IGNORECASE)
_LINK_FETCHED = re.compile(r"""\brel=["']?[^"'>]*\b(?:stylesheet|icon|preload|modulepreload)\b""", re.IGNORECASE)
_EXTERNAL_ATTR = re.compile(r"""(\b(?:src|href)=)(["'])((?:https?:)?//[^"']*)\2""", re.IGNORECASE)
# Subresource integrity and CORS mode were for the CDN's copy: a local file is same-origin (and a browser
# refuses a crossorigin script from a file:// page).
_CDN_ONLY_ATTR = re.compile(r"""\s+(?:integrity|crossorigin)(?:=(["'])[^"']*\1)?""", re.IGNORECASE)
# The site's own static/ files, named relative to the page: Great Expectations 1.24 gets the depth wrong
# on some pages (the favicon of a validation page one level short), so they are named again from the site.
_SITE_STATIC = re.compile(r"""(\b(?:src|href)=)(["'])(?:\./|(?:\.\./)+)static/([^"']*)\2""", re.IGNORECASE)
_EXTERNAL_CSS_URL = re.compile(r"""url\((["']?)((?:https?:)?//[^"')]*)\1\)""", re.IGNORECASE)


class AssetsMissing(RuntimeError):
    """The npm packages are not installed (`make install` runs `npm ci --prefix assets`)."""


def docs_root(settings: Settings) -> Path:
    """The folder holding every run's Data Docs site: NEWSFLOW_DATA_DOCS_DIR, else `data-docs/` beside a
    SQLite warehouse file, else under the data directory."""
    if settings.data_docs_dir is not None:
        return Path(settings.data_docs_dir).resolve()
    url = make_url(settings.warehouse_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / "data-docs"
    return Path(settings.data_dir).resolve() / "data-docs"


def docs_link(settings: Settings, index: Path) -> str:
    """What the run's data-docs artifact links to: the page on the docs server when one is configured (a
    browser refuses file:// links from the UI's http page), else the file itself."""
    index = Path(index).resolve()
    if settings.data_docs_url:
        try:
            path = index.relative_to(docs_root(settings)).as_posix()
        except ValueError:  # written elsewhere than the server serves
            return index.as_uri()
        return f"{settings.data_docs_url.rstrip('/')}/{path}"
    return index.as_uri()


def install_assets(node_modules: Path, target: Path) -> Path:
    """Copy the files the pages load from the npm packages to `target` (once: a file already there with
    the same size is kept); returns `target`."""
    if not (node_modules / CDN_FILES[next(iter(CDN_FILES))]).is_file():
        raise AssetsMissing(f"the Data Docs assets are not installed in {node_modules}: "
                            "run `make install` (npm ci --prefix assets)")
    for relative in [*CDN_FILES.values(), *(
            str(f.relative_to(node_modules)) for d in CDN_DIRS for f in (node_modules / d).rglob("*") if f.is_file())]:
        source, copy = node_modules / relative, target / relative
        if not copy.is_file() or copy.stat().st_size != source.stat().st_size:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
    return target


def localize_html(text: str, page_dir: Path, site: Path, assets: Path) -> tuple[str, list[str]]:
    """A page (or style sheet) with every CDN asset pointing at its local copy, relative to the page so the
    site opens from a file or over http alike, and the logos at the site's own; an external asset we have
    no copy of is blanked rather than fetched. Returns the text and the URLs blanked."""
    dropped: list[str] = []
    text = _LOGO.sub(os.path.relpath(site / LOCAL_LOGO, page_dir), text)
    static = os.path.relpath(site / "static", page_dir)
    text = _SITE_STATIC.sub(lambda m: f"{m.group(1)}{m.group(2)}{static}/{m.group(3)}{m.group(2)}", text)

    def attribute(match: re.Match[str]) -> str:
        prefix, quote, url = match.groups()
        absolute = url if url.startswith("http") else f"https:{url}"
        if absolute in CDN_FILES:
            return f"{prefix}{quote}{os.path.relpath(assets / CDN_FILES[absolute], page_dir)}{quote}"
        dropped.append(absolute)
        return f"{prefix}{quote}data:,{quote}"

    def tag(match: re.Match[str]) -> str:
        if match.group(1).lower() == "link" and not _LINK_FETCHED.search(match.group(0)):
            return match.group(0)  # <link rel="canonical"> and the like fetch nothing
        localized = _EXTERNAL_ATTR.sub(attribute, match.group(0))
        return localized if localized == match.group(0) else _CDN_ONLY_ATTR.sub("", localized)

    def css_url(match: re.Match[str]) -> str:
        dropped.append(match.group(2))
        return "url(data:,)"

    return _EXTERNAL_CSS_URL.sub(css_url, _TAG.sub(tag, text)), dropped


def localize_site(site: Path, node_modules: Path) -> list[str]:
    """Rewrite every page of a built Data Docs site to load its assets from the project; the shared copy
    goes beside the runs' sites. Returns what a person should know: assets not installed (the pages then
    lack their styles, but still load nothing from the internet), external URLs left out (none, unless
    Great Expectations' templates changed)."""
    assets = site.parent / ASSETS_DIRNAME
    warnings: list[str] = []
    try:
        install_assets(node_modules, assets)
    except AssetsMissing as missing:
        warnings.append(str(missing))
    dropped: set[str] = set()
    for page in [*site.rglob("*.html"), *(site / "static").rglob("*.css")]:
        text, lost = localize_html(page.read_text(encoding="utf-8"), page.parent, site, assets)
        page.write_text(text, encoding="utf-8")
        dropped.update(lost)
    if dropped:
        warnings.append(f"external assets with no local copy, left out: {', '.join(sorted(dropped))}")
    return warnings
