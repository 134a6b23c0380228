"""What a fetch did: one result per source, and the error raised when some failed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ItemsFailed


@dataclass(frozen=True)
class ItemResult:
    """What happened to one source."""

    manifest: str
    id: str
    status: str  # fetched | skipped | failed | pruned (`fetch --prune`)
    reason: str | None = None
    path: str | None = None
    sha256: str | None = None
    attempts: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FetchReport:
    """Per-item results of one `fetch`, in manifest order."""

    root: Path
    items: tuple[ItemResult, ...] = field(default=())
    # (manifest file, source ids, pair ids): what the catalog holds of a manifest that no
    # longer names it
    stale: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()
    # the sources fetched again with other content, whose clips (of the old file) were dropped:
    # they need `cut` again
    recut: tuple[str, ...] = ()
    # other sources' clips whose status changed when the near-duplicates were decided again
    # after clips went (pruned, or of a source fetched with other content): kept again where
    # what they duplicated is gone (`scenes.cut.settle_duplicates`)
    redecided: tuple[str, ...] = ()

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.items)

    @property
    def failed(self) -> list[ItemResult]:
        return [r for r in self.items if r.status == "failed"]

    def summary(self) -> str:
        done = ", ".join(f"{s} {self.count(s)}" for s in ("fetched", "skipped", "failed"))
        pruned = self.count("pruned")
        return f"{done}, pruned {pruned}" if pruned else done

    def to_dict(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.items]


class FetchFailed(ItemsFailed):
    """Some sources failed (each in the report and the catalog with its reason): exit 1."""

    def __init__(self, report: FetchReport):
        n = len(report.failed)
        super().__init__(
            f"{n} of {len(report.items)} source(s) failed ({report.summary()}); "
            "see the table or `filmdata sources` for the reasons"
        )
        self.report = report
