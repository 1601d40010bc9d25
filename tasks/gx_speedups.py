"""Two per-validation costs of Great Expectations 1.24 that our checks do not need to pay.

Profiling a 1,000-row batch through the `deduplicated` suite shows most of a validation's time in GX
building its metric graph, not in computing metrics:
- `Expectation.configuration` is a property that rebuilds an `ExpectationConfiguration` (a pydantic
  `dict()` and a camel-to-snake regex) on every access: about 170 times per validation of four
  expectations. Inside our validations (`cached_configurations()`) it is computed once per expectation
  object; GX builds those objects afresh for each validation and does not change them while it runs.
- `IDDict.to_id` serialises every metric configuration's kwargs with `convert_to_json_serializable`,
  which asks numpy four questions about each value before it reaches `None`. Values that are already
  plain JSON (str, int, bool, None, and lists and dicts of them) are returned as they are.

Both keep GX's results unchanged: tests/test_quality.py compares every suite's results with and without them
(the `loaded` suite's $PARAMETER expectations included). They rely on GX internals,
which is why great-expectations is pinned in pyproject.toml.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_local = threading.local()  # the configuration cache of the validation running on this thread
_installed = False


@contextlib.contextmanager
def cached_configurations() -> Iterator[None]:
    """Within this block, each expectation object's configuration is built once."""
    outer = getattr(_local, "cache", None)
    _local.cache = {} if outer is None else outer
    try:
        yield
    finally:
        _local.cache = outer


def install() -> None:
    """Patch GX once per process (idempotent)."""
    global _installed
    if _installed:
        return
    from great_expectations.core import id_dict
    from great_expectations.expectations.expectation import Expectation

    build = Expectation.configuration.fget

    def configuration(self: Any) -> Any:
        cache = getattr(_local, "cache", None)
        if cache is None:
            return build(self)
        hit = cache.get(id(self))
        if hit is None or hit[0] is not self:  # (ids are reused once an object is gone)
            hit = cache[id(self)] = (self, build(self))
        return hit[1]

    serialise = id_dict.convert_to_json_serializable

    def to_json(data: Any) -> Any:
        return data if _plain_json(data) else serialise(data)

    Expectation.configuration = property(configuration, doc=Expectation.configuration.__doc__)
    id_dict.convert_to_json_serializable = to_json
    _installed = True


def _plain_json(value: Any, depth: int = 0) -> bool:
    kind = type(value)
    if value is None or kind in (str, int, bool):
        return True
    if depth > 3:
        return False
    if kind is dict:
        return all(type(k) is str and _plain_json(v, depth + 1) for k, v in value.items())
    if kind is list:
        return all(_plain_json(v, depth + 1) for v in value)
    return False
