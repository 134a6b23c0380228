"""`synth --backend ray`: each shard a Ray task making it with the same `make_shards` as a local
run, this driver alone writing the record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .synth import CONFIG, Degrader, ShardJob, has_cuda, make_shards, shard_entry


@dataclass(frozen=True)
class RayShards:
    """What a Ray worker needs to make one shard: the same `make_shards` as locally."""

    dataset: str
    templates: str
    preset: str
    device: str
    seed: int
    sharpen_gt: bool
    clip_len: int
    size: int
    batch_size: int
    image_format: str

    def __call__(self, job: ShardJob) -> dict[str, Any]:
        degrader = _DEGRADERS.get(self)
        if degrader is None:  # once per worker process
            degrader = Degrader.load(
                self.templates, self.preset, self.device, self.seed, self.sharpen_gt
            )
            _DEGRADERS[self] = degrader
        record: dict[str, Any] = {"shards": {}}
        make_shards(
            Path(self.dataset),
            [job],
            degrader,
            clip_len=self.clip_len,
            size=self.size,
            batch_size=self.batch_size,
            image_format=self.image_format,
            record=record,
            quiet=True,
            save_record=False,
        )
        return record["shards"][job.file]


_DEGRADERS: dict[RayShards, Degrader] = {}


def make_shards_ray(
    task: RayShards,
    jobs: Sequence[ShardJob],
    dataset: Path,
    record: dict[str, Any],
    root: Path,
    ray_address: str | None,
    quiet: bool,
) -> int:
    """Each shard a Ray task (retried when its worker dies: shards are written atomically and
    their bytes depend only on (seed, window id)); this driver alone writes the record.
    Returns the windows made.

    As locally, failed windows do not stop the run: a task's entry names its windows whose
    media failed, and a task that failed as a whole (its function raised, or its worker died
    past the retries) is recorded as a shard all of whose windows failed (`merge_ray_shard`).
    `synth` then writes the card and exits 1 naming them (`failed_windows`)."""
    from tqdm import tqdm

    from .backend import map_items
    from .shards import clean_temporaries, config_dir, write_record

    gpu = 0.5 if task.device.startswith("cuda") or task.device == "auto" and has_cuda() else 0.0
    made = 0
    bar = tqdm(
        total=sum(len(j.windows) for j in jobs), desc="synth (ray)", unit="win", disable=quiet
    )
    try:
        for i, entry in map_items(
            task,
            list(jobs),
            backend="ray",
            ray_address=ray_address,
            num_gpus=gpu,
            max_retries=3,
            root=root,
            out=dataset,  # (the workers write the shards there: `--out` may be off the root)
        ):
            job = jobs[i]
            entry = merge_ray_shard(dataset, record, job, entry)
            write_record(dataset, CONFIG, record)
            made += entry["rows"]
            bar.update(len(job.windows))
    finally:
        bar.close()
    # Every task has ended (retried or not): a worker killed mid-write left its temporary.
    clean_temporaries(config_dir(dataset, CONFIG))
    return made


def merge_ray_shard(
    dataset: Path, record: dict[str, Any], job: ShardJob, result: Any
) -> dict[str, Any]:
    """Put what the Ray task of `job` gave (its shard's entry, or the `ItemError` of a task
    that failed as a whole) into `record`; returns the entry.

    A failed task's shard is written empty (the schema alone, as when every window of a shard
    fails locally) and each of its windows named with the task's error: the card is then
    written for the shards made, `verify` lists it, and a re-run makes it again (its ids are
    not the plan's), as for a window whose media failed."""
    from .backend import ItemError
    from .shards import ShardWriter, config_dir

    if isinstance(result, ItemError):
        with ShardWriter(config_dir(dataset, CONFIG) / job.file) as shard:
            pass  # (replaces whatever a task that raised after writing it left)
        why = f"its shard {job.file} failed on Ray: {result.error}"
        result = shard_entry(
            shard.entry, job, {w.id: f"{w.path}: {why} (window {w.id})" for w in job.windows}
        )
    record["shards"][job.file] = result
    return result
