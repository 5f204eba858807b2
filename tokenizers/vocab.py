"""Numericalization: the vocabulary that turns tokens into ids and back (chapter 10, "Numericalization with fastai").

The vocab is built from token counts exactly as fastai's ``make_vocab``::

    >>> v = Vocab.build([["xxbos", "a", "b", "a"], ["xxbos", "a"]], min_freq=1)
    >>> v.itos[:11]
    ['xxunk', 'xxpad', 'xxbos', 'xxeos', 'xxfld', 'xxrep', 'xxwrep', 'xxup', 'xxmaj', 'a', 'b']
    >>> v.encode(["a", "zebra"])
    [9, 0]

1. keep the ``max_vocab`` most common tokens (ties in first-seen order), then drop those seen fewer than
   ``min_freq`` times (the cut comes before the filter, as in fastai);
2. put the special tokens first, so ``xxunk`` is 0 and ``xxpad`` is 1;
3. truncate to ``max_vocab`` and pad with ``xxfake`` up to the next multiple of 8 (a length that is already a
   multiple of 8 gets 8 more: fastai's arithmetic, kept so vocab sizes and weights line up with fastai's).

Unknown tokens encode to 0 (``xxunk``); ``xxfake`` entries are never produced by ``encode``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from .atomic import write_json
from .rules import SPECIAL_TOKENS

FAKE = "xxfake"


def as_itos(vocab: Vocab | Sequence[str]) -> list[str]:
    """The token list of a Vocab, or of a plain list of strings (what the other packages accept as a vocab)."""
    itos = getattr(vocab, "itos", vocab)
    if isinstance(itos, str) or not isinstance(itos, Sequence) or not all(isinstance(t, str) for t in itos):
        raise TypeError(f"vocab must be a list of strings or have .itos, got {type(vocab).__name__}")
    return list(itos)


class Vocab:
    """A list of tokens (``itos``) and its inverse (``stoi``); id 0 is xxunk, id 1 is xxpad."""

    def __init__(self, itos: Sequence[str]):
        itos = list(itos)
        if not all(isinstance(t, str) for t in itos):
            raise TypeError("Vocab expects a list of str tokens")
        self.itos: list[str] = itos
        # The first occurrence wins, and xxfake padding maps to nothing (it is never a real token).
        self.stoi: dict[str, int] = {}
        for i, tok in enumerate(itos):
            if tok != FAKE:
                self.stoi.setdefault(tok, i)

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 3, max_vocab: int = 60000,
              special_tokens: Sequence[str] = SPECIAL_TOKENS) -> Vocab:
        """Count the tokens of every document and keep the frequent ones (fastai's ``make_vocab``)."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        return cls.from_counts(counts, min_freq, max_vocab, special_tokens)

    @classmethod
    def from_counts(cls, counts: Counter[str], min_freq: int = 3, max_vocab: int = 60000,
                    special_tokens: Sequence[str] = SPECIAL_TOKENS) -> Vocab:
        """Make the vocab from a Counter; its insertion order breaks ties between equal counts."""
        if min_freq < 1 or max_vocab < 1:
            raise ValueError(f"min_freq and max_vocab must be >= 1, got {min_freq} and {max_vocab}")
        itos = [tok for tok, c in counts.most_common(max_vocab) if c >= min_freq]
        specials = set(special_tokens)
        itos = list(special_tokens) + [tok for tok in itos if tok not in specials]
        itos = itos[:max_vocab]
        return cls(itos + [FAKE] * (8 - len(itos) % 8))

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {' '.join(self.itos[:12])} ...)"

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Tokens -> ids; unknown tokens become 0 (xxunk)."""
        get = self.stoi.get
        return [get(t, 0) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> tokens."""
        itos = self.itos
        return [itos[int(i)] for i in ids]

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocab as JSON (a list of strings), atomically."""
        write_json(path, {"itos": self.itos})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        """Read a vocab written by :meth:`save` (or a plain JSON list of tokens)."""
        try:
            obj = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read vocab file {path}: {e}") from e
        itos = obj.get("itos") if isinstance(obj, dict) else obj
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise ValueError(f"vocab file {path} does not hold a list of tokens")
        return cls(itos)

