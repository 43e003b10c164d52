"""Columns that line up with Hangul in them: a Hangul syllable (East Asian Wide) takes two columns of a terminal or a
notebook's monospaced output, a Latin letter one; Python's ``f"{s:<20}"`` counts characters, so a table with Korean
headers or cells drifts. ``pad`` counts columns instead (``unicodedata.east_asian_width``)."""
from __future__ import annotations

import unicodedata


def width(text: str) -> int:
    """Columns ``text`` takes in a monospaced font: 2 for Wide and Fullwidth characters (Hangul, Hanja, kana), else 1."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(value, size: int, align: str = "<") -> str:
    """``value`` as text filled with spaces to ``size`` columns, on the right (``"<"``) or the left (``">"``)."""
    if align not in "<>":
        raise ValueError(f"align={align!r}: '<' (왼쪽 정렬) 또는 '>' (오른쪽 정렬)")
    text = str(value)
    gap = " " * max(0, size - width(text))
    return text + gap if align == "<" else gap + text
