"""JSON that strict parsers accept: no ``NaN`` or ``Infinity``.

Python's :mod:`json` writes a float NaN as ``NaN`` and infinity as ``Infinity`` unless told not to,
but the JSON standard (RFC 8259) has no such numbers, and strict readers (``jq``, JavaScript's
``JSON.parse``, most other languages) reject the whole line. Everything the course prints or
stores as JSON goes through :func:`dumps` or :func:`dump`, which write a number that is not finite
as ``null`` (meaning "no value": a divergence between two distributions that is infinite, say).
"""
from __future__ import annotations

import json
import math
from typing import IO, Any

__all__ = ["dump", "dumps", "finite"]


def finite(value: Any) -> Any:
    """``value`` with every float that is not finite (NaN, +-inf) replaced by ``None``, through
    dicts, lists and tuples (tuples become lists, as JSON has no tuples)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`finite` ``(value)``, refusing any non-standard number left."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)


def dump(value: Any, handle: IO[str], **kwargs: Any) -> None:
    """``json.dump`` of :func:`finite` ``(value)`` to an open text file."""
    json.dump(finite(value), handle, allow_nan=False, **kwargs)
