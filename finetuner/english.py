"""Counts in sentences a person reads: "1 epoch", "3 epochs", "1,200 rows". Imports nothing."""

from __future__ import annotations


def plural(n: float, word: str, words: str | None = None) -> str:
    """`n` and the word in the number it takes (`words`, else `word` + "s"); whole numbers
    with thousands separators, others as `:g` writes them."""
    many = words or f"{word}s"
    shown = f"{int(n):,}" if float(n).is_integer() else f"{n:g}"
    return f"{shown} {word if n == 1 else many}"
