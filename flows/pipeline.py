"""The pipeline, as data: which stages a run goes through, in order, where each one runs and what it is
judged on. The flow, the run's counts (`pipeline_runs.stage_counts`), the run report and the command
line's stage table all read this list.

Lanes: `I/O` stages run on threads (fetching waits on the network), `CPU` stages in worker processes
(or a Dask cluster), `ordered` stages one batch after another, each batch's after the previous batch's
load (deduplication and loading must see the batches before them in the warehouse).

To add a stage between dedupe and load, write its task (a function of a batch's articles returning a
`StageResult`: the articles that go on, the rejections, the stats; see `tasks.records.StageResult`) and
add a `Stage` with it to `PIPELINE`. A `suite` (a JSON file in expectations/ judging the `records` table
of the articles it passes on) is optional.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flows.stages import clean_task, dedupe_task, fetch_task, load_task


class Lane(StrEnum):
    IO = "I/O"
    CPU = "CPU"
    ORDERED = "ordered"


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    lane: Lane
    task: Callable[..., Any]  # a Prefect task; a stage of its own: (articles, settings, label) -> StageResult
    suite: str | None = None  # the Great Expectations suite its output is judged on (expectations/<suite>.json)
    tables: tuple[str, ...] = ()  # the tables that suite reads
    writes: tuple[str, ...] = ()  # the warehouse tables the stage writes (besides quarantine and dq_results)


PIPELINE: tuple[Stage, ...] = (
    Stage("fetch", Lane.IO, fetch_task, "fetched", ("records", "sources"),
          ("fetches", "raw_documents", "http_cache")),
    Stage("clean", Lane.CPU, clean_task, "cleaned", ("records", "sources")),
    Stage("dedupe", Lane.ORDERED, dedupe_task, "deduplicated", ("records",)),
    Stage("load", Lane.ORDERED, load_task, "loaded", ("articles", "duplicates"),
          ("articles", "duplicates", "article_versions", "stories", "run_writes")),
)

# The stages the flow drives itself, each in its own way (fetched in parts, cleaned in chunks, deduplicated
# against the warehouse, loaded under its lock); any other stage goes between dedupe and load.
BUILT_IN = ("fetch", "clean", "dedupe", "load")


def stage_names(pipeline: Sequence[Stage]) -> list[str]:
    return [stage.name for stage in pipeline]


def added_stages(pipeline: Sequence[Stage]) -> list[Stage]:
    """The stages between dedupe and load, in order: each takes a batch's articles and passes some on."""
    names = stage_names(pipeline)
    if [n for n in names if n in BUILT_IN] != list(BUILT_IN) or names.index("load") != len(names) - 1:
        raise ValueError(f"the pipeline must run {', '.join(BUILT_IN)} in this order, load last: {names}")
    return list(pipeline[names.index("dedupe") + 1:names.index("load")])


def suites(pipeline: Sequence[Stage]) -> dict[str, str]:
    """Stage -> the suite it is judged on."""
    return {stage.name: stage.suite for stage in pipeline if stage.suite}
