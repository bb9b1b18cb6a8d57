"""Recall tasks that need a look back over the whole sequence: associative recall and indexed recall.

Associative recall (Ba et al. 2016; Zoology, Arora et al. 2023): each sequence holds its own random dictionary from
``keys`` keys to ``values`` values; the input lists ``length - 1`` (key, value) pairs, one token per pair (token id
``key * values + value``), then a query token naming one key that appeared; the target is that key's value. A
recurrent model must carry every pair it has seen in its fixed-size state (it cannot know which will be asked);
attention can look the pair up when the query arrives.

Indexed recall: ``length - 1`` random symbols, then a query token naming a position; the target is the symbol at
that position. The symbols carry no order, so a model needs position information to answer.

Shapes: x (n, length) int64 token ids, y (n,) int64 class ids. Every generator takes a seed or a torch.Generator.
"""

from __future__ import annotations

import torch

from esc_course.data.sequences import _generator, _positive


def associative_recall(n: int, length: int, *, keys: int = 16, values: int = 8,
                       generator: torch.Generator | int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n sequences of ``length`` tokens: ``length - 1`` (key, value) pair tokens, then the query token.

    Token ids: pairs 0 .. keys*values - 1, queries keys*values .. keys*values + keys - 1 (see
    :func:`recall_vocab_size`). Targets are value ids 0 .. values - 1.
    """
    for name, value in (("n", n), ("keys", keys), ("values", values)):
        _positive(name, value)
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        raise ValueError(f"length must be an integer >= 2 (at least one pair and the query), got {length!r}")
    gen = _generator(generator)
    rows = torch.arange(n)
    table = torch.randint(0, values, (n, keys), generator=gen)           # each sequence's own dictionary
    k = torch.randint(0, keys, (n, length - 1), generator=gen)           # the keys listed, repeats allowed
    pairs = k * values + table.gather(1, k)                              # (n, length - 1) pair tokens
    asked = k[rows, torch.randint(0, length - 1, (n,), generator=gen)]   # a key that appeared
    x = torch.cat([pairs, (keys * values + asked)[:, None]], dim=1)      # (n, length)
    return x, table[rows, asked]


def recall_vocab_size(keys: int = 16, values: int = 8) -> int:
    """Token ids of :func:`associative_recall`: the pair tokens and the query tokens."""
    return keys * values + keys


def indexed_recall(n: int, length: int, *, symbols: int = 16,
                   generator: torch.Generator | int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n sequences: ``length - 1`` random symbols (ids 0 .. symbols - 1), then a query token ``symbols + i`` that
    asks for the symbol at position i (0-based); the target is that symbol. Vocabulary: symbols + length - 1."""
    for name, value in (("n", n), ("symbols", symbols)):
        _positive(name, value)
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        raise ValueError(f"length must be an integer >= 2, got {length!r}")
    gen = _generator(generator)
    seq = torch.randint(0, symbols, (n, length - 1), generator=gen)
    where = torch.randint(0, length - 1, (n,), generator=gen)
    x = torch.cat([seq, (symbols + where)[:, None]], dim=1)
    return x, seq[torch.arange(n), where]
