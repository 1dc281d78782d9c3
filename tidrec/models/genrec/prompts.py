"""Item titles, their token sequences, and the prompts the title-generation models read.

A prompt lists the last ``prompt_items`` history items, oldest first and newest last, then asks for
the next one; the model answers with the item's title and its end-of-sequence token. Every
catalogue title is tokenized once, on its own, with a leading space: the same token sequence the
model is trained to emit after a prompt, so the title trie (:func:`title_sequences`) holds exactly
what training taught.
"""

from __future__ import annotations

import re
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from tidrec.errors import InputError

PROMPT_HEAD = "A user watched these items, oldest first:\n"
PROMPT_TAIL = "The next item the user watched:"

_MOVIELENS = re.compile(r"^Title: (?P<title>.*?)\. Year: (?P<year>[^.]*)\.")


def item_titles(texts: Sequence[str], item_ids: Sequence[str] | None = None) -> list[str]:
    """One distinct title per item: what the model reads in prompts and generates.

    MovieLens-style text (``Title: X. Year: Y. ...``) becomes ``X (Y)``; any other text is used
    whole (its first line). Items sharing a title are told apart by a `` [n]`` suffix in item order
    (MovieLens-100K lists some films twice under two ids).

    Raises:
        InputError: an item has no text (naming it).
    """
    titles = []
    for row, text in enumerate(texts):
        line = (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""
        if not line:
            name = item_ids[row] if item_ids is not None else row
            raise InputError(f"item {name!r} (row {row}) has no text: title-generation models need one")
        match = _MOVIELENS.match(line)
        titles.append(f"{match['title']} ({match['year']})" if match else line)
    counts, seen = Counter(titles), Counter()
    for row, title in enumerate(titles):
        if counts[title] > 1:
            seen[title] += 1
            titles[row] = f"{title} [{seen[title]}]"
    return titles


def title_sequences(
    tokenizer: Any, titles: Sequence[str], *, max_tokens: int | None = None
) -> list[list[int]]:
    """Each title's token ids as generated after a prompt: `` title`` then the EOS token.

    Ending every sequence with EOS makes no title a prefix of another, so each one ends at a leaf of
    the title trie.

    Raises:
        InputError: a title longer than ``max_tokens`` tokens (naming it), or two titles that
            tokenize alike.
    """
    eos = tokenizer.eos_token_id
    encoded = tokenizer([" " + title for title in titles], add_special_tokens=False)["input_ids"]
    sequences = [[*ids, eos] for ids in encoded]
    first: dict[tuple[int, ...], str] = {}
    for title, seq in zip(titles, sequences, strict=True):
        other = first.setdefault(tuple(seq), title)
        if other != title:
            raise InputError(f"item titles {other!r} and {title!r} tokenize alike; make them distinct")
    if max_tokens is not None:
        for title, seq in zip(titles, sequences, strict=True):
            if len(seq) > max_tokens:
                raise InputError(
                    f"item title {title!r} is {len(seq)} tokens, more than the context allows ({max_tokens})"
                )
    return sequences


def prompt_ids(
    tokenizer: Any,
    title_ids: Sequence[Sequence[int]],
    history: np.ndarray,
    *,
    prompt_items: int,
    max_tokens: int,
) -> list[int]:
    """The prompt of one history (item_idx, oldest first) as token ids.

    The newest ``prompt_items`` items are listed one per line; when they exceed ``max_tokens`` the
    oldest lines are dropped first, so the newest items always stay.

    Raises:
        InputError: even the head, the newest item and the question exceed ``max_tokens``.
    """
    head, tail, newline = _fixed_ids(tokenizer)
    lines: list[list[int]] = []
    budget = max_tokens - len(head) - len(tail)
    for item in history[::-1][:prompt_items]:  # newest first, until the budget is spent
        line = [*title_ids[int(item)][:-1], *newline]  # the title without its EOS
        if len(line) > budget:
            break
        lines.append(line)
        budget -= len(line)
    if not lines and len(history):
        raise InputError(f"--max-prompt-tokens {max_tokens} leaves no room for the newest history item")
    return [*head, *(token for line in reversed(lines) for token in line), *tail]


_FIXED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fixed_ids(tokenizer: Any) -> tuple[list[int], list[int], list[int]]:
    """Token ids of the prompt's head, its closing question and a line break (cached per tokenizer
    object, and dropped with it)."""
    cached = _FIXED.get(tokenizer)
    if cached is None:
        encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        cached = _FIXED[tokenizer] = (encode(PROMPT_HEAD), encode(PROMPT_TAIL), encode("\n"))
    return cached
