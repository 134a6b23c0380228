"""JSON that other tools read: no NaN or Infinity (Python writes them, the JSON standard has
neither, and jq, JavaScript or a strict parser refuse the whole document)."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(obj: Any) -> Any:
    """`obj` with every float that is NaN or infinite (in dicts, lists and tuples, however deep)
    made None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any, **kw: Any) -> str:
    """`json.dumps` of `finite(obj)`, strict (a non-finite number left anywhere raises)."""
    return json.dumps(finite(obj), allow_nan=False, **kw)
