"""`filmdata verify`: check every shard of a dataset against its record, and repair it.

A shard is good when it is present, its sha256 and row count are the record's, Parquet reads
it, its ids are the record's, every image decodes, each row's `lq` and `gt` have the same
length, and no window of it failed when it was made (the record's `failed`). The card is good
when its configs, splits and row counts are the records' (what `load_dataset` offers). `repair`
re-makes a bad or missing synthetic shard from its rows' records (source, start frame, crop;
the degradation is redone from (seed, window id)), which on the device that made it gives the
same bytes. It is refused where a file it would cut GT from holds other content than the one
the dataset was made from (the record's `input_content`): the shard would be another file's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import FilmdataError, RefusedError
from .gt_frames import leaks


def resolve_dataset(
    dataset: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> Path:
    """A dataset folder from a path, or a name under `ROOT/datasets/` or in the catalog."""
    from .catalog import dataset_folder
    from .paths import datasets_dir, refuse_unless_input_folder, resolve_root

    path = Path(dataset).expanduser()
    if (path / "data").is_dir():
        return path.resolve()
    r = resolve_root(root)
    if (datasets_dir(r) / str(dataset) / "data").is_dir():
        return datasets_dir(r) / str(dataset)
    cataloged = dataset_folder(r, str(dataset))
    if cataloged is not None:
        return cataloged
    refuse_unless_input_folder(
        path,
        "dataset folder (with data/)",
        name=f"dataset {str(dataset)!r}",
        hint="see `filmdata datasets`",
        missing_ok=True,
    )
    raise RefusedError(
        f"dataset {str(dataset)!r}: not a dataset folder (with data/) nor a "
        f"dataset name under {r}; see `filmdata datasets`"
    )


#: The problem of a shard file its config's record does not list (`check_shard`).
UNRECORDED = (
    "not in the record (an unfinished write: re-run the command that made it, or `verify --repair`)"
)
#: The same where the record itself is gone: repair mends nothing then (`_verify`'s `lost`).
UNRECORDED_RECORD_GONE = "not in the record (the record is gone: see its line)"


def _image_problem(data: bytes) -> str | None:
    """Why a stored image does not decode ("does not decode (its reason)"), or None: opened
    with Pillow, as `datasets` opens a row's images. (OpenCV's libpng printed "libpng error:
    ..." on the process's stderr for a broken PNG, beside our line naming it; Pillow raises,
    and costs the same: 1.2-1.3 ms a 256^2 PNG.)"""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception as e:  # noqa: BLE001 - whatever Pillow raises, the image is broken
        return f"does not decode ({str(e)[:80] or type(e).__name__})"
    return None


def check_shard(path: Path, entry: dict[str, Any] | None) -> list[str]:
    """The problems of one shard file (empty when it is good)."""
    import pyarrow.parquet as pq

    from .shards import sha256_file

    if not path.exists():
        return ["missing"]
    problems = []
    if entry is None:
        problems.append(UNRECORDED)
    elif sha256_file(path) != entry.get("sha256"):
        problems.append("sha256 differs from the record")
    failed = (entry or {}).get("failed") or {}
    if failed:  # its media failed when it was made: the shard lacks those rows of the plan
        problems.append(
            f"{len(failed)} window(s) failed when it was made (first: "
            f"{next(iter(failed.values()))}); `verify --repair` or a re-run tries them again"
        )
    try:
        pf = pq.ParquetFile(path)
        rows = pf.metadata.num_rows
        if entry is not None and rows != entry.get("rows"):
            problems.append(f"{rows} rows, the record says {entry.get('rows')}")
        ids: list[str] = []
        for batch in pf.iter_batches(batch_size=8, columns=["id", "gt", "lq"]):
            for row in batch.to_pylist():
                ids.append(row["id"])
                gt, lq = row["gt"] or [], row["lq"] or []
                if len(gt) != len(lq) or not gt:
                    problems.append(f"row {row['id']}: {len(gt)} gt frames, {len(lq)} lq")
                for k, cell in enumerate(gt + lq):
                    why = _image_problem((cell or {}).get("bytes") or b"")
                    if why:
                        problems.append(f"row {row['id']}: image {k} {why}")
                        break
        if entry is not None and ids != entry.get("ids"):
            problems.append("row ids differ from the record")
    except Exception as e:  # noqa: BLE001 - whatever pyarrow raises, the shard is unreadable
        problems.append(f"unreadable Parquet: {type(e).__name__}: {str(e)[:120]}")
    return problems


def verify(
    dataset: str | os.PathLike[str],
    repair: bool = False,
    *,
    root: str | os.PathLike[str] | None = None,
    device: str = "auto",
    quiet: bool = True,
) -> dict[str, Any]:
    """Check every shard of a dataset against its record; with `repair`, re-make bad ones.

    Args:
        dataset: the dataset folder or its name (under `ROOT/datasets/` or in the catalog).
        repair: re-make bad or missing synthetic shards from their rows' records.
        root: the data root (the catalog finds sources that moved).
        device: for repair: where to degrade; auto: the device kind that made the shards when
            this machine has it (only there are the bytes the same).
        quiet: no progress bars.

    Returns:
        {"dataset", "ok", "shards": [{"config", "file", "ok", "problems", "repaired"}],
         "temporaries": [...], "card": {"file", "ok", "problems", "repaired", "repairable"},
         "leaks": [...]}; `ok` is false when a bad shard is left (those of a config whose
        repair would cut GT from a file of other content than the record's `input_content`
        are all left, each `note` naming the file), a card that does not list what the
        records do (`shards.card_problems`; `repair` rewrites it), or a GT frame is in train
        of one config and validation of another (`leaks`: one line each; repair leaves them:
        re-make one of the configs, which then honours the other).

    Raises:
        RefusedError: not a dataset; for repair, the templates or preset at the recorded
            places are not the ones that made it (nothing is changed then).
        FilmdataError: a source needed for repair is gone.
    """
    from . import shards

    path = resolve_dataset(dataset, root)
    if repair:  # no writer may run beside a repair
        from .paths import unwritable

        for folder in [path, *(p for p in (path / "data").iterdir() if p.is_dir())]:
            why = unwritable(folder)
            if why:  # refused before anything is read or changed
                raise RefusedError(
                    f"{folder} is {why}; `verify --repair` rewrites shards and the card "
                    "there (check without --repair, or repair a writable copy)"
                )
        with shards.locked(path):
            return _verify(path, True, root=root, device=device, quiet=quiet)
    with shards.read_locked(path):
        return _verify(path, False, root=root, device=device, quiet=quiet)


def _verify(
    path: Path, repair: bool, *, root: str | os.PathLike[str] | None, device: str, quiet: bool
) -> dict[str, Any]:
    from . import shards
    from .synth import CONFIG

    report: dict[str, Any] = {"dataset": str(path), "shards": [], "temporaries": []}
    unreadable = kept = False
    for folder in sorted(p for p in (path / "data").iterdir() if p.is_dir()):
        config = folder.name
        try:
            record = shards.read_record(path, config)
        except FilmdataError as e:  # its shards cannot be checked against it
            unreadable = True
            report["shards"].append(
                {
                    "config": config,
                    "file": shards.record_path(path, config).name,
                    "ok": False,
                    "problems": [str(e)],
                    "repaired": False,
                }
            )
            continue
        report["temporaries"] += [str(p) for p in folder.glob(".*.tmp-*")]
        names = set(record["shards"]) | {p.name for p in folder.glob("*.parquet")}
        results = []
        lost = names and not shards.has_record(folder)  # (it is written before any shard)
        if lost:
            results.append(
                {
                    "config": config,
                    "file": shards.RECORD,
                    "entry": None,
                    "problems": [
                        "missing: the record of this config's shards is gone, so they "
                        "cannot be checked nor repaired; re-make the config with the "
                        "command that made it (--overwrite)"
                    ],
                }
            )
            kept = True  # the card too: rewritten from the records, it would drop the config
        for name in sorted(names):
            entry = record["shards"].get(name)
            problems = check_shard(folder / name, entry)
            if lost:  # (its advice, `verify --repair`, mends nothing without the record)
                problems = [UNRECORDED_RECORD_GONE if p == UNRECORDED else p for p in problems]
            results.append({"config": config, "file": name, "entry": entry, "problems": problems})
        # the command that resumes a planned shard: synth's config, else an export's
        again = "synth" if config == CONFIG else f"`filmdata pair --export {path.name}`"
        for split, n in (record.get("plan") or {}).items():
            for k in range(n):
                name = shards.shard_name(split, k, n)
                if name not in names:
                    results.append(
                        {
                            "config": config,
                            "file": name,
                            "entry": None,
                            "problems": [
                                f"missing: never completed (re-run {again} with "
                                "the same options to resume)"
                            ],
                        }
                    )
        bad = [r for r in results if r["problems"]]
        changed = _replaced_inputs(config, record, bad, folder, root) if bad and not lost else []
        if changed:  # with or without repair: nothing of the config is touched
            _refuse_repair(config, record, bad, folder, changed)
        elif repair and bad and not lost:
            _repair(path, config, record, bad, root=root, device=device, quiet=quiet)
        for r in results:
            report["shards"].append(
                {
                    "config": config,
                    "file": r["file"],
                    "ok": not r["problems"] or r.get("repaired", False),
                    "problems": r["problems"],
                    "repaired": r.get("repaired", False),
                    "repairable": bool(r["problems"])
                    and not lost
                    and not changed
                    and _repairable(config, record, r, folder),
                    **({"note": r["note"]} if r.get("note") else {}),
                }
            )
    if repair and report["temporaries"]:
        for t in report["temporaries"]:
            Path(t).unlink(missing_ok=True)
        report["temporaries"] = []
    # The card: what `load_dataset` offers must be what the records list.
    if unreadable:  # the card and the leaks are checked against the records
        problems = ["not checked: a shard record is unreadable"]
        card = {"file": "README.md", "problems": problems, "repaired": False}
    else:
        card = {"file": "README.md", "problems": shards.card_problems(path), "repaired": False}
    remade = any(s["repaired"] for s in report["shards"])
    # (rewritten from the records, the card would drop a config whose record is unreadable
    # or gone: repair leaves it, and the advice says so, `card["repairable"]`)
    card["repairable"] = bool(card["problems"]) and not (unreadable or kept)
    rewrite = repair and not (unreadable or kept)
    # (a run stopped before its first card: the card names its planned shards, `write_card`)
    if (
        rewrite
        and (card["problems"] or remade)
        and (shards.scan(path) or shards.pending_files(path))
    ):
        shards.write_card(path)
        card["repaired"] = bool(card["problems"])
    card["ok"] = not card["problems"] or card["repaired"]
    report["card"] = card
    # Across configs: no GT frame in train of one and validation of another (`gt_frames`).
    report["leaks"] = [] if unreadable else leaks(path, _catalog_root(path, root))
    report["ok"] = (
        all(s["ok"] for s in report["shards"])
        and not report["temporaries"]
        and card["ok"]
        and not report["leaks"]
    )
    return report


def _catalog_root(dataset: Path, root: str | os.PathLike[str] | None) -> Path:
    """The root whose catalog knows the dataset's sources: `root` when given, else the one
    the dataset lives in (ROOT/datasets/NAME), else the default."""
    from .paths import resolve_root

    if root is None and (dataset.parent.parent / "catalog.sqlite").exists():
        return dataset.parent.parent
    return resolve_root(root)


def _repairable(config: str, record: dict[str, Any], r: dict[str, Any], folder: Path) -> bool:
    """Whether `_repair` can mend this bad shard (`_mend`)."""
    return _mend(config, record, r, folder) is not None


def _mend(config: str, record: dict[str, Any], r: dict[str, Any], folder: Path) -> str | None:
    """How `_repair` mends a bad shard: "remove" a file the record does not list (where the
    record lists none, it is the record that is damaged: nothing), "remake" a shard of a config
    synth made whose entry records its windows; None: neither (a shard never completed has no
    record of its rows, the run that planned it resumes it; a config another command wrote is
    that command's to re-make)."""
    from .synth import CONFIG

    entry = r["entry"]
    exists = (folder / r["file"]).exists()
    if config != CONFIG or record.get("maker") != "synth":
        return "remove" if entry is None and record["shards"] and exists else None
    if entry is None:
        return "remove" if exists else None
    return "remake" if entry.get("windows") else None


def _window_file(path: str, source: str, root: str | os.PathLike[str] | None) -> str:
    """The file a recorded window is cut from now: its recorded path, else its catalog
    source's file under `root` (a root moved since)."""
    from .replay import source_path

    return path if Path(path).exists() else str(source_path(source, root=root))


def _replaced_inputs(
    config: str,
    record: dict[str, Any],
    bad: list[dict[str, Any]],
    folder: Path,
    root: str | os.PathLike[str] | None,
) -> list[str]:
    """The files a repair of `bad` would cut GT from whose content is not the one the record's
    `input_content` names (the file replaced at its path since the dataset was made), as now
    found. Not compared: a record made before contents were recorded, a file it does not name,
    a source not found (`_repair` names it)."""
    from .fingerprint import holds
    from .synth import INPUT_CONTENT

    content = (record.get("params") or {}).get(INPUT_CONTENT)
    if not content:
        return []
    files: dict[str, str] = {}  # recorded path -> source
    for r in bad:
        if _mend(config, record, r, folder) == "remake":
            files.update((d["path"], d["source"]) for d in r["entry"]["windows"])
    out = []
    for recorded, source in files.items():
        try:
            now = _window_file(recorded, source, root)
        except FilmdataError:
            continue
        key = _recorded_key(content, recorded) or _recorded_key(content, now)
        if key is not None and not holds(now, key):
            out.append(now)
    return out


def _recorded_key(content: dict[str, str], path: str) -> str | None:
    """The content `input_content` records for the file at `path`: by the path itself (an
    --input file), else by the path under the root that ends it (a catalog source's)."""
    if path in content:
        return content[path]
    parts = Path(path).parts
    for name, key in content.items():
        tail = Path(name).parts
        if not Path(name).is_absolute() and ".." not in tail and parts[-len(tail) :] == tail:
            return key
    return None


def _refuse_repair(
    config: str,
    record: dict[str, Any],
    bad: list[dict[str, Any]],
    folder: Path,
    changed: list[str],
) -> None:
    """The notes of a config whose repair would cut GT from the `changed` files: re-made, a
    shard would be another file's beside every other shard of the first's, and verify would
    then call the dataset good. Nothing of the config is repaired (a stray waits with the
    rest)."""
    why = (
        f"input {', '.join(changed)} holds other content than when the dataset was made (a "
        "shard re-made from it would not be the dataset's); put back the file that made it, "
        "or re-make the config with synth --overwrite"
    )
    for r in bad:
        mendable = _mend(config, record, r, folder) is not None
        r["note"] = why if mendable else "no record of its rows: re-run synth with the same options"


def _repair(
    path: Path,
    config: str,
    record: dict[str, Any],
    bad: list[dict[str, Any]],
    *,
    root: str | os.PathLike[str] | None,
    device: str,
    quiet: bool,
) -> None:
    from . import shards
    from .replay import making_device
    from .synth import CONFIG, Degrader, ShardJob, Window, make_shards

    folder = shards.config_dir(path, config)
    params = record.get("params") or {}
    if config != CONFIG or record.get("maker") != "synth":
        # an unrecorded shard is not part of the dataset, whatever made the config
        strays = [r for r in bad if _mend(config, record, r, folder) == "remove"]
        for r in strays:
            (folder / r["file"]).unlink()
            r["repaired"], r["note"] = True, "removed (it was not in the record)"
        for r in (r for r in bad if r not in strays):
            r["note"] = (
                f"config {config!r} is not synthetic: re-make it with the command that "
                "wrote it (real pairs: `filmdata pair --export NAME`)"
            )
        return
    jobs, fixable, strays = [], [], []
    for r in bad:
        entry = r["entry"]
        how = _mend(config, record, r, folder)
        if how != "remake":
            if how == "remove":
                strays.append(r)  # an unrecorded shard: not part of the dataset
            else:
                r["note"] = "no record of its rows: re-run synth with the same options"
            continue
        wins = []
        for d in entry["windows"]:
            w = Window.from_dict(d)
            if not Path(w.path).exists():
                w = Window(
                    **{**w.to_dict(), "path": _window_file(w.path, w.source, root), "crop": w.crop}
                )
            wins.append(w)
        n = (record.get("plan") or {}).get(entry["split"], 1)
        jobs.append(ShardJob(entry["split"], int(entry["index"]), int(n), tuple(wins)))
        fixable.append(r)
    degrader = None
    if jobs:
        need: tuple[str, ...] = ("templates", "preset", "seed", "clip_len", "size", "image_format")
        need += ("preset_sha256", "templates_fingerprint")  # (a resume compares them too)
        missing = [k for k in need if k not in params]
        if missing:
            raise FilmdataError(
                f"{folder / shards.RECORD}: no {missing} in the record's params; "
                "cannot repair, re-run synth with --overwrite"
            )
        degrader = Degrader.load(
            params["templates"],
            params["preset"],
            making_device(params.get("device"), device),
            int(params["seed"]),
            bool(params.get("sharpen_gt")),
        )
        # The preset and the pack found at the recorded places now must be the ones that
        # made the dataset: others would re-make a shard of other rows and call it repaired.
        # Refused before anything is touched.
        for field, have in (
            ("templates_fingerprint", degrader.bank.fingerprint()),
            ("preset_sha256", degrader.preset_sha256()),
        ):
            if have != params[field]:
                what = "templates" if field.startswith("templates") else "preset"
                raise RefusedError(
                    f"{path}: {field}: the record says {params[field]}, the {what} "
                    f"{params[what]} give {have} now; repair needs the templates and preset "
                    "that made the dataset (restore them there), or re-make it with "
                    "synth --overwrite"
                )
    for r in strays:
        (folder / r["file"]).unlink()
        r["repaired"], r["note"] = True, "removed (it was not in the record)"
    if degrader is None:
        return
    old = {r["file"]: (r["entry"] or {}).get("sha256") for r in fixable}
    for job in jobs:
        (folder / job.file).unlink(missing_ok=True)
    make_shards(
        path,
        jobs,
        degrader,
        clip_len=int(params["clip_len"]),
        size=int(params["size"]),
        batch_size=int(params.get("batch_size") or 8),
        image_format=params["image_format"],
        record=record,
        quiet=quiet,
    )
    for r in fixable:
        entry = record["shards"][r["file"]]
        again = check_shard(folder / r["file"], entry)
        r["repaired"] = not again
        if again:
            r["problems"] = r["problems"] + [f"after repair: {p}" for p in again]
        elif entry["sha256"] != old[r["file"]]:
            r["note"] = "re-made; bytes differ from the old record (another device or version)"
