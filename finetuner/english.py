"""Counts in sentences a person reads: "1 epoch", "3 epochs", "1,200 rows". Imports nothing."""

from __future__ import annotations


def plural(n: float, word: str, words: str | None = None) -> str:
    """`n` and the word in the number it takes (`words`, else `word` + "s"); whole numbers
    with thousands separators, others as `:g` writes them."""
    many = words or f"{word}s"
    shown = f"{int(n):,}" if float(n).is_integer() else f"{n:g}"
    return f"{shown} {word if n == 1 else many}"


def listed(names, noun: str, verbs: tuple[str, str] | None = None) -> str:
    """Named things with their noun, and a verb if given, in the number they take:
    "label 'a' has", "labels 'a', 'b' have" (capitalise at the start of a sentence)."""
    names = list(names)
    one = len(names) == 1
    words = f"{noun if one else noun + 's'} {', '.join(repr(n) for n in names)}"
    return f"{words} {verbs[0] if one else verbs[1]}" if verbs else words
