"""A preset, bank or kit file's fields, checked one by one: files are untrusted (people share
them), so each bad value is a ``PresetError`` naming the file and the field, and saying the range.

The one rule for a name (``check_name``: preset, bank and kit names, and every name a file
refers to) and the ranges the three kinds of file share live here; ``presets``, ``banks`` and
``kits`` hold each kind's own fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gansynth_instrument.errors import PresetError
from gansynth_instrument.model.metadata import NAME_PATTERN

GAIN_DB_RANGE = (-60.0, 24.0)
PROGRAM_RANGE = (0, 127)
BANK_RANGE = (0, 127)  # bank select MSB (CC0)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_float32(value: object) -> bool:
    """A finite number float32 can hold: float32 is what the model takes, so a value that
    overflows it (1e39, a 400-digit integer) counts as not finite."""
    if not is_number(value):
        return False
    try:
        with np.errstate(over="ignore"):
            return bool(np.isfinite(np.float32(value)))  # type: ignore[arg-type]
    except OverflowError:
        return False


def check_name(where: str, value: object, field_name: str = "name") -> None:
    """The one check of a name a file gives or refers to (``metadata.NAME_PATTERN``)."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise PresetError(
            f"{where}: field '{field_name}': {value!r} is not a valid name "
            "(1-64 letters, digits, '-' or '_', starting with a letter or digit)"
        )


def check_known(
    where: str, fields: Mapping[Any, Any], known: tuple[str, ...], parent: str = ""
) -> None:
    """A PresetError naming the first field of ``fields`` (under ``parent``) not in ``known``."""
    unknown = sorted(str(k) for k in fields if k not in known)
    if unknown:
        name = f"{parent}.{unknown[0]}" if parent else unknown[0]
        raise PresetError(f"{where}: unknown field '{name}' (known: {', '.join(known)})")


def check_range(where: str, name: str, value: object, bounds: tuple[float, float]) -> None:
    lo, hi = bounds
    if not is_number(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise PresetError(f"{where}: field '{name}': expected a number, got {value!r}")
    if not lo <= float(value) <= hi:  # type: ignore[arg-type]
        raise PresetError(f"{where}: field '{name}': {value} is outside {lo:g}..{hi:g}")


def check_int(where: str, name: str, value: object, bounds: tuple[int, int]) -> None:
    if not is_int(value):
        raise PresetError(f"{where}: field '{name}': expected an integer, got {value!r}")
    if not bounds[0] <= int(value) <= bounds[1]:  # type: ignore[call-overload]
        raise PresetError(f"{where}: field '{name}': {value} is outside {bounds[0]}..{bounds[1]}")
