"""The sources file: which feeds, pages and files to ingest, validated before anything is fetched."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from tasks.kinds import source_kinds

_ENV_REFERENCE = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")

# Bounds on a sources list, wherever it comes from: far above any real one (a source is a dozen values).
MAX_NODES = 100_000  # values once YAML aliases are expanded
MAX_DEPTH = 20  # nesting
MAX_TEXT = 5_000_000  # characters of the YAML text, and of any one value


class SourcesError(ValueError):
    """The sources file or list is wrong; the message names the entry and the field."""


class SourceUnavailable(RuntimeError):
    """A source yielded nothing because nothing matched its path or its feed or sitemap could not be read:
    the run fails (after the other sources are loaded), so that a typo never passes for "nothing new"."""


class SourceBase(BaseModel):
    """What every kind of source has; each kind (see tasks.kinds) adds its `kind: Literal[...]` and fields."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    allow_private_network: bool = False
    max_items: int | None = Field(default=None, gt=0)

    def first_url(self) -> str | None:
        """The URL the source is read from first (its host orders the fetching), if any."""
        return None

    def relative_to(self, folder: Path) -> None:
        """Make paths given relative to the sources file relative to `folder` instead (none by default)."""


class PathSource(SourceBase):
    """A source read from local files: a path or glob, relative to the sources file it is given in."""

    path: str = Field(min_length=1)

    def relative_to(self, folder: Path) -> None:
        if not Path(self.path).is_absolute():
            self.path = str(folder / self.path)


class FilesSource(PathSource):
    kind: Literal["files"]  # path: a path or glob of .txt, .html, .json, .jsonl files


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class HttpSource(SourceBase):
    # Hosts the source's links may point to (subdomains included); empty: any host.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Re-fetch articles already in the warehouse once they were last seen this long ago
    # (seconds, or "30m", "6h", "2d"); unset: an article URL is fetched once.
    refresh_interval: timedelta | None = None

    @field_validator("refresh_interval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and (match := _DURATION.match(value)):
            return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()])
        return value

    @staticmethod
    def _check_http(url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"not an http(s) URL: {url!r}")
        return url


class _ListingSource(HttpSource):
    """A source read from one listing URL (a feed or a sitemap)."""

    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return cls._check_http(value)

    def first_url(self) -> str | None:
        return self.url


class RssSource(_ListingSource):
    kind: Literal["rss"]  # RSS, Atom or JSON Feed


class UrlsSource(HttpSource):
    kind: Literal["urls"]
    urls: list[str] = Field(min_length=1)

    @field_validator("urls")
    @classmethod
    def _urls(cls, values: list[str]) -> list[str]:
        return [cls._check_http(v) for v in values]

    def first_url(self) -> str | None:
        return self.urls[0]


class SitemapSource(_ListingSource):
    kind: Literal["sitemap"]  # a sitemap, a sitemap index or a Google News sitemap, optionally gzipped


class WarcSource(PathSource):
    kind: Literal["warc"]  # path: a path or glob of .warc / .warc.gz files (e.g. CC-NEWS)


Source = SourceBase  # any registered kind (tasks.kinds)


@lru_cache(maxsize=4)
def _adapter(models: tuple[type[SourceBase], ...]) -> TypeAdapter[list[SourceBase]]:
    """The list of sources, each validated as the model of its `kind` (only registered kinds)."""
    if len(models) == 1:
        return TypeAdapter(list[models[0]])  # type: ignore[valid-type]
    return TypeAdapter(list[Annotated[Union[models], Field(discriminator="kind")]])  # type: ignore[valid-type]  # noqa: UP007


def expand_env(value: Any) -> Any:
    """Replace ${VAR} and ${VAR:-default} in strings, so one file serves several environments."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise SourcesError(f"environment variable {name} is not set (used in the sources)")

        return _ENV_REFERENCE.sub(substitute, value)
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    return value


def check_size(value: Any, origin: str, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
    """Refuse sources that would be too big once expanded, before anything walks or copies them: YAML
    aliases share one object however often they are used, so a few hundred bytes of `&a [*b, *b, ...]`
    expand to billions of values. Counting stops at the bound, so this costs at most `max_nodes` steps."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise SourcesError(f"{origin}: too big once expanded (over {max_nodes:,} values; YAML aliases "
                               "repeating one another?)")
        if depth > max_depth:
            raise SourcesError(f"{origin}: nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
            nodes += len(item)  # (the keys)
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str | bytes) and len(item) > MAX_TEXT:
            raise SourcesError(f"{origin}: a value of {len(item):,} characters (at most {MAX_TEXT:,})")


class _TooDeep(yaml.YAMLError):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing to nest deeper than MAX_DEPTH while it composes (its recursion
    would otherwise run thousands of levels deep first)."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep(f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def safe_yaml(text: str, origin: str) -> Any:
    """YAML (or JSON) text parsed within bounds: its size, its nesting, its size once aliases expand."""
    if len(text) > MAX_TEXT:
        raise SourcesError(f"{origin}: {len(text):,} characters, more than a sources list needs "
                           f"(at most {MAX_TEXT:,})")
    try:
        document = yaml.load(text, Loader=_BoundedLoader)  # (a SafeLoader)
    except _TooDeep as exc:
        raise SourcesError(f"{origin}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SourcesError(f"{origin}: not valid YAML: {exc}") from None
    check_size(document, origin)
    return document


def parse_sources(entries: Any, origin: str = "sources") -> list[Source]:
    """Validate a list of source entries; errors name the entry (index and name) and the field."""
    if not isinstance(entries, list) or not entries:
        raise SourcesError(f"{origin}: expected a non-empty list of sources")
    check_size(entries, origin)  # a flow parameter or a Prefect Variable as much as a file
    entries = expand_env(entries)
    try:
        sources = _adapter(tuple(kind.model for kind in source_kinds())).validate_python(entries)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = list(first["loc"])
        index = location[0] if location and isinstance(location[0], int) else None
        entry = entries[index] if index is not None and index < len(entries) else {}
        name = entry.get("name", "?") if isinstance(entry, dict) else "?"
        # Pydantic puts the discriminator tag ("rss", "files", ...) second in the location.
        fields = [str(part) for part in location[2:]] if len(location) > 2 else []
        field_name = ".".join(fields) or "kind"
        raise SourcesError(
            f"{origin}: source #{index} ({name}), field '{field_name}': {first['msg']}"
        ) from None
    names = [s.name for s in sources]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SourcesError(f"{origin}: source names must be unique, repeated: {', '.join(duplicated)}")
    return sources


def load_sources_file(path: str | os.PathLike[str]) -> list[Source]:
    """Read and validate a YAML sources file (`sources:` list)."""
    file = Path(path)
    try:
        with file.open(encoding="utf-8") as stream:
            text = stream.read(MAX_TEXT + 1)  # (a sources file is small: never read a huge one whole)
    except FileNotFoundError:
        raise SourcesError(f"{file}: no such sources file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesError(f"{file}: unreadable: {exc}") from None
    document = safe_yaml(text, str(file))
    if not isinstance(document, dict) or "sources" not in document:
        raise SourcesError(f"{file}: expected a mapping with a 'sources:' list")
    sources = parse_sources(document["sources"], origin=str(file))
    for source in sources:  # paths in a sources file are relative to the file: it works from any directory
        source.relative_to(file.parent)
    return sources


def resolve_sources(
    sources_file: str | None = None, sources: list[dict[str, Any]] | None = None
) -> list[Source]:
    """Sources from a file and/or an inline list (the flow's two parameters)."""
    resolved: list[Source] = []
    if sources_file:
        resolved.extend(load_sources_file(sources_file))
    if sources:
        resolved.extend(parse_sources(sources, origin="sources parameter"))
    if not resolved:
        raise SourcesError("no sources given: pass a sources file or a list of sources")
    names = [s.name for s in resolved]
    if len(set(names)) != len(names):
        raise SourcesError("source names must be unique across the sources file and the sources list")
    return resolved
