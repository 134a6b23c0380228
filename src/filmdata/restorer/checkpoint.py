"""Run folders: `config.json`, `model.safetensors`, `ema.safetensors`, `optimizer.safetensors`
and `state.json`. Safe formats only: weights as safetensors, everything else as JSON; nothing in a
run folder is ever unpickled (a `.pt`/`.bin`/`.pkl` planted there is never opened)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import RefusedError
from ..paths import refuse_unless_input_folder, resolve_root, runs_dir
from .config import RestorerConfig

CONFIG, MODEL, EMA, OPTIM, STATE = (
    "config.json",
    "model.safetensors",
    "ema.safetensors",
    "optimizer.safetensors",
    "state.json",
)


def resolve_run(run: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """A run folder from a path, or a run name under ROOT/runs.

    Raises:
        RefusedError: neither holds a `config.json`, or the path is a file (and no such name).
    """
    path = Path(run).expanduser()
    if (path / CONFIG).is_file():
        return path.resolve()
    named = runs_dir(resolve_root(root)) / str(run)
    if (named / CONFIG).is_file():
        return named
    hint = "pass a run folder made by `filmdata train`"
    refuse_unless_input_folder(
        path,
        f"run folder ({CONFIG}, weights)",
        name=f"run {str(run)!r}",
        hint=f"{hint}, or a run name under ROOT/runs",
        missing_ok=True,
    )
    raise RefusedError(f"run {str(run)!r}: no {CONFIG} there nor in {named}; {hint}")


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _tensors_to_tmp(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> Path:
    """Write `tensors` beside `path` under a temporary name; returns that name."""
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), meta)
    # (the writer makes it 0600: readable by its owner only, unlike the run's other files)
    os.chmod(tmp, 0o666 & ~_umask())
    return tmp


def _umask() -> int:
    """The process's umask: read where Linux shows it (setting it to read it back would
    change it for a moment for every thread, the data loader's included)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RefusedError(f"{path}: cannot read as JSON: {e}") from None


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (never a pickle).

    Raises:
        RefusedError: missing, or not a safetensors file.
    """
    return _read_tensors_step(path)[0]


def _read_tensors_step(path: Path) -> tuple[dict[str, torch.Tensor], int | None]:
    """`read_tensors`, and the step the file was written at (its metadata; None where it
    names none), read in one opening: a checkpoint written meanwhile is not mixed in."""
    if not path.is_file():
        raise RefusedError(f"{path}: missing; the run is incomplete (train it again)")
    try:
        with safe_open(str(path), "pt") as f:
            step = (f.metadata() or {}).get("step")
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (no dict: not iterable)
    except (SafetensorError, OSError, ValueError) as e:
        raise RefusedError(f"{path}: not a valid safetensors file ({e}); refused") from None
    return tensors, int(step) if isinstance(step, str) and step.isdigit() else None


def save_config(run: Path, cfg: RestorerConfig, extra: dict[str, Any] | None = None) -> None:
    run.mkdir(parents=True, exist_ok=True)
    _atomic_json(run / CONFIG, cfg.to_dict() | {"filmdata": extra or {}})


def trained_on(run: Path) -> str | None:
    """The dataset folder a run was trained on, as `train` recorded it in its config."""
    data = read_json(run / CONFIG)
    extra = data.get("filmdata") if isinstance(data, dict) else None
    dataset = extra.get("dataset") if isinstance(extra, dict) else None
    return dataset if isinstance(dataset, str) else None


def load_config_json(run: Path) -> RestorerConfig:
    data = read_json(run / CONFIG)
    if isinstance(data, dict):
        data.pop("filmdata", None)
    return RestorerConfig.from_dict(data, where=str(run / CONFIG), saved=True)


def save_checkpoint(
    run: Path,
    model: torch.nn.Module,
    ema: dict[str, torch.Tensor],
    opt: torch.optim.Optimizer,
    state: dict[str, Any],
) -> None:
    """Write weights, EMA weights, optimizer state and the loop state as one checkpoint.

    The three tensor files are written under temporary names first (the slow part: a crash
    there leaves the previous checkpoint whole), then renamed into place, state.json last. Each
    file carries its step, and `checkpoint_step` refuses files of another step than state.json's
    (a crash among the renames), so a checkpoint is complete when its state.json names its step.
    """
    meta = {"step": str(state["step"]), "format": "filmdata-restorer-1"}
    tensors, groups = _flatten_optimizer(opt)
    parts = [(run / MODEL, model.state_dict()), (run / EMA, ema), (run / OPTIM, tensors)]
    tmps: list[Path] = []
    try:
        for path, values in parts:
            tmps.append(_tensors_to_tmp(path, values, meta))
        for tmp, (path, _) in zip(tmps, parts, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
    _atomic_json(run / STATE, state | {"param_groups": groups})


def checkpoint_step(run: Path) -> int:
    """The step of the run's last checkpoint, checked whole: every tensor file of that step.

    Raises:
        RefusedError: state.json or a tensor file unreadable or missing, or a file of another
            step (a checkpoint interrupted while its files were renamed in).
    """
    if not (run / STATE).is_file():
        raise RefusedError(
            f"{run / STATE}: missing; the run has no whole checkpoint (train it again)"
        )
    state = read_json(run / STATE)
    step = state.get("step") if isinstance(state, dict) else None
    if not isinstance(step, int):
        raise RefusedError(f"{run / STATE}: names no step; the run is incomplete (train it again)")
    for name in (MODEL, EMA, OPTIM):
        path = run / name
        if not path.is_file():
            raise RefusedError(f"{path}: missing; the run is incomplete (train it again)")
        try:
            with safe_open(str(path), "pt") as f:
                got = (f.metadata() or {}).get("step")
        except (SafetensorError, OSError, ValueError) as e:
            raise RefusedError(f"{path}: not a valid safetensors file ({e}); refused") from None
        if got != str(step):
            raise RefusedError(
                f"{path}: of step {got}, but {STATE} names step {step}: the checkpoint was "
                "interrupted while written; train again with another --out"
            )
    return step


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], Any]:
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"{pid}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    return tensors, sd["param_groups"]


def load_optimizer(run: Path, opt: torch.optim.Optimizer, groups: Any) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in read_tensors(run / OPTIM).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    try:
        opt.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, TypeError) as e:
        raise RefusedError(f"{run / OPTIM}: does not match the model ({e})") from None


def load_weights(model: torch.nn.Module, path: Path) -> int | None:
    """Load the weights of `path` into `model`; returns the step they were written at (None
    where the file names none)."""
    tensors, step = _read_tensors_step(path)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        # torch's first line is a heading ("Error(s) in loading state_dict for UNet:"); the
        # next names what differs (missing keys, a tensor's shapes)
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        first = lines[1] if len(lines) > 1 else (lines[0] if lines else type(e).__name__)
        raise RefusedError(f"{path}: does not match config.json ({first})") from None
    return step


def load_model(
    run: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    device: torch.device | str = "cpu",
    ema: bool = True,
) -> tuple[Any, RestorerConfig, Path]:
    """The restorer of a run (EMA weights when present), in eval mode on `device`.

    Raises:
        RefusedError: a bad run folder, config or weights, or a checkpoint not whole
            (`checkpoint_step`).

    Returns:
        (model, config, run folder).
    """
    model, cfg, path, _ = load_run(run, root, device=device, ema=ema)
    return model, cfg, path


def load_run(
    run: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    device: torch.device | str = "cpu",
    ema: bool = True,
) -> tuple[Any, RestorerConfig, Path, int]:
    """`load_model`, and the training step of the weights loaded: below the config's `steps`
    for a run stopped part-way, or still training (`warn_part_way`).

    Returns:
        (model, config, run folder, step).
    """
    from .model import UNet

    path = resolve_run(run, root)
    cfg = load_config_json(path)
    step = checkpoint_step(path)  # (a checkpoint interrupted while written is not taken whole)
    model = UNet(cfg)
    weights = path / EMA if ema and (path / EMA).is_file() else path / MODEL
    # (the step of the file read: a run still training may have checkpointed since)
    loaded = load_weights(model, weights)
    return model.to(device).eval(), cfg, path, step if loaded is None else loaded


def warn_part_way(run: Path, cfg: RestorerConfig, step: int, doing: str) -> None:
    """Warn (`UserWarning`) where the run's checkpoint of `step` is short of its config's steps:
    it stopped part-way or is still training. Such a run is used, not refused (a run is
    evaluated mid-training), but said so; `doing` says what is done with it."""
    if step < cfg.steps:
        warnings.warn(
            f"{run}: its checkpoint is at step {step} of the {cfg.steps} its config trains "
            f"(the run stopped part-way, or is still training); {doing} the weights of step "
            f"{step}",
            UserWarning,
            stacklevel=3,
        )
