"""The registry of source kinds: what a sources file may name under `kind:`, and how each is fetched.

A kind is one module that defines its pydantic model (a `SourceBase` subclass with `kind: Literal[...]`)
and its fetcher, registered together:

    @fetcher(ApiSource)
    def fetch_api(source: ApiSource, job: FetchJob) -> None: ...

and is named in `KIND_MODULES` (imported before a sources list is parsed). The built-in kinds live in
`tasks/fetch.py`. Nothing here imports a stage: the sources parser, the fetch stage, the flow and the
command line all read the kinds from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

# Modules whose import registers source kinds (add yours here).
KIND_MODULES: tuple[str, ...] = ("tasks.fetch",)


@dataclass(frozen=True, slots=True)
class CliOption:
    """How `newsflow ingest` takes sources of a kind on its command line: `--feed URL` (repeatable). Each
    value becomes a source named `<prefix>-<n>`, or with `one_source` all values one source named `prefix`."""

    flag: str
    metavar: str
    help: str
    field: str  # the model's field the value goes in
    prefix: str
    one_source: bool = False


@dataclass(frozen=True, slots=True)
class SourceKind:
    name: str
    model: type[Any]
    fetch: Callable[..., None]  # (source, FetchJob) -> None; fills the job's outcome
    over_http: bool  # fetched with a polite HTTP client (statuses expected); else read from local files
    cli: CliOption | None = None


_KINDS: dict[str, SourceKind] = {}  # filled once, as the kind modules are imported; read-only after
F = TypeVar("F", bound=Callable[..., None])


def kind_name(model: type[Any]) -> str:
    """The `kind:` a model accepts: the one value of its `kind: Literal[...]` field."""
    (name,) = model.model_fields["kind"].annotation.__args__
    return str(name)


def fetcher(model: type[Any], *, over_http: bool = True, cli: CliOption | None = None) -> Callable[[F], F]:
    """Register `model` as a source kind fetched by the decorated function."""

    def register(fetch: F) -> F:
        name = kind_name(model)
        known = _KINDS.get(name)
        if known is not None and (known.model is not model or known.fetch.__qualname__ != fetch.__qualname__):
            raise ValueError(f"source kind {name!r} is registered twice")
        _KINDS[name] = SourceKind(name, model, fetch, over_http, cli)
        return fetch

    return register


def source_kinds() -> list[SourceKind]:
    """Every registered kind, in registration order (the kind modules imported first)."""
    for module in KIND_MODULES:
        importlib.import_module(module)
    return list(_KINDS.values())


def source_kind(name: str) -> SourceKind:
    kinds = {k.name: k for k in source_kinds()}
    if name not in kinds:
        raise KeyError(f"no source kind {name!r} (known: {', '.join(sorted(kinds))})")
    return kinds[name]
