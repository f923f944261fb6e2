"""Numbers in user messages, formatted for people under numpy 1 and 2 alike.

numpy 2 prints scalars as ``np.float64(600015.0)`` wherever a message uses repr (a tuple or list in an
f-string does), so every value that reaches a message goes through these helpers instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["band_ranges", "names_text", "number_text", "numbers_text"]


def number_text(value, digits: int = 6) -> str:
    """``value`` as plain text: integers as integers, floats rounded to ``digits`` decimals, no trailing zeros."""
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return str(value)
    if as_float.is_integer() and abs(as_float) < 1e15:
        return str(int(as_float))
    text = f"{round(as_float, digits):.{digits}f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def numbers_text(values: Iterable, digits: int = 6) -> str:
    """A sequence as ``(a, b, c)`` with each number through number_text."""
    return "(" + ", ".join(number_text(v, digits) for v in values) + ")"


def names_text(names: Iterable) -> str:
    """Names as ``'a', 'b'``: each through str first (numpy 2's repr of np.str_ is ``np.str_('a')``)."""
    return ", ".join(repr(str(n)) for n in names)


def band_ranges(numbers: Sequence[int]) -> str:
    """'1-129, 136-224' for a list of band numbers."""
    parts: list[str] = []
    numbers = [int(b) for b in numbers]
    start = prev = None
    for b in [*numbers, None]:
        if start is not None and (b is None or b != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if b is not None and start is None:
            start = b
        prev = b
    return ", ".join(parts)
