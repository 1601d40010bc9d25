"""Run configuration an operator changes without a code change: sources in a Prefect Variable, the
warehouse URL in a Prefect Secret block."""

from __future__ import annotations

from typing import Any

from tasks.settings import Settings
from tasks.sources import SourcesError, safe_yaml


def sources_from_variable(name: str) -> list[dict[str, Any]]:
    """The sources list held by the Prefect Variable `name` (JSON list, `{sources: [...]}` or YAML text)."""
    from prefect.variables import Variable

    value = Variable.get(name, default=None)
    if value is None:
        raise SourcesError(f"no sources given: pass sources_file, or set the Prefect Variable {name!r} "
                           "to a list of sources")
    if isinstance(value, str):
        value = safe_yaml(value, f"Prefect Variable {name!r}")
    if isinstance(value, dict) and "sources" in value:
        value = value["sources"]
    if not isinstance(value, list):
        raise SourcesError(f"Prefect Variable {name!r}: expected a list of sources or a 'sources:' mapping")
    return value


def warehouse_url(settings: Settings, explicit: str | None = None) -> str:
    """The run's warehouse: the flow parameter, else the Secret block named by NEWSFLOW_WAREHOUSE_SECRET,
    else NEWSFLOW_WAREHOUSE_URL (or its default)."""
    if explicit:
        return explicit
    if settings.warehouse_secret:
        from prefect.blocks.system import Secret

        try:
            return str(Secret.load(settings.warehouse_secret).get())
        except ValueError as exc:
            raise RuntimeError(f"warehouse Secret block {settings.warehouse_secret!r} could not be loaded: "
                               f"{exc}") from None
    return settings.warehouse_url
