"""JSON that other tools read: no NaN or Infinity (Python writes them, the JSON standard has
neither, and jq, JavaScript or a strict parser refuse the whole document)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any


def finite(obj: Any, default: Callable[[Any], Any] | None = None) -> Any:
    """`obj` with every float that is NaN or infinite (in dicts, lists and tuples, however deep)
    made None; any other value JSON has no type for first turned into one by `default` (as
    `json.dumps` would call it)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v, default) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v, default) for v in obj]
    if default is not None and not isinstance(obj, (str, int, type(None))):
        return finite(default(obj), default)
    return obj


def dumps(obj: Any, default: Callable[[Any], Any] | None = None, **kw: Any) -> str:
    """`json.dumps` of `finite(obj, default)`, strict (a non-finite number left anywhere
    raises)."""
    return json.dumps(finite(obj, default), allow_nan=False, **kw)
