"""The spool: what a run fetched but could not load because the warehouse was unavailable.

A run that loses the warehouse writes its not-yet-loaded records to a JSON Lines file under
`<data_dir>/spool/<warehouse>/` (cleaned articles of the batch being loaded, raw documents of the
batches not reached) and fails; the next run into the same warehouse takes the files first (cleaned
articles as their own batch, documents ahead of what it fetches) and deletes them once it completes.
Files are written atomically (temporary name, then rename), so a crash never leaves half a file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc

from tasks.db import WarehouseError, safe_url
from tasks.records import Article, Document, Duplicate, utcnow
from tasks.settings import Settings

RECORD_TYPES: dict[str, type] = {"document": Document, "article": Article, "duplicate": Duplicate}


@dataclass(slots=True)
class SpoolFile:
    path: Path
    documents: list[Document] = field(default_factory=list)
    articles: list[Article] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)  # copies of these articles, dropped


def spool_dir(settings: Settings) -> Path:
    """One folder per warehouse (by its URL without password), so a spool is loaded where it belongs."""
    key = hashlib.sha256(safe_url(settings.warehouse_url).encode()).hexdigest()[:12]
    return Path(settings.data_dir) / "spool" / key


def warehouse_unavailable(error: BaseException) -> bool:
    """Whether the error (or one it came from) means the warehouse could not be reached or written."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, WarehouseError | sa_exc.OperationalError | sa_exc.InterfaceError
                      | sa_exc.DisconnectionError | sa_exc.TimeoutError | ConnectionError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)


def _decode(obj: dict[str, Any]) -> Any:
    if obj.keys() == {"$datetime"}:
        return datetime.fromisoformat(obj["$datetime"])
    return obj


def write_spool(settings: Settings, run_id: str, documents: Sequence[Document] = (),
                articles: Sequence[Article] = (), duplicates: Sequence[Duplicate] = ()) -> Path | None:
    """Keep these records for the next run; None when there is nothing to keep."""
    if not documents and not articles:
        return None
    folder = spool_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{utcnow():%Y%m%dT%H%M%S%f}-{run_id}.jsonl"
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as out:
        for kind, records in (("article", articles), ("duplicate", duplicates), ("document", documents)):
            for record in records:
                out.write(json.dumps({"type": kind, "record": dataclasses.asdict(record)}, default=_encode,
                                     ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())
    partial.rename(path)
    return path


def read_spool(settings: Settings) -> list[SpoolFile]:
    """The spooled files for this warehouse, oldest first."""
    folder = spool_dir(settings)
    files = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        spooled = SpoolFile(path)
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                entry = json.loads(line, object_hook=_decode)
                cls = RECORD_TYPES[entry["type"]]
                names = {f.name for f in dataclasses.fields(cls)}
                record = cls(**{k: v for k, v in entry["record"].items() if k in names})
                getattr(spooled, entry["type"] + "s").append(record)
        files.append(spooled)
    return files


def discard(files: Iterable[SpoolFile]) -> None:
    for spooled in files:
        spooled.path.unlink(missing_ok=True)
