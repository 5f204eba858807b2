"""Character tokenization: the chapter 10 questionnaire's exercise, with the interface of ``SubwordTokenizer``.

A character tokenizer is the limit of subword tokenization with the smallest vocab: every character is a token
(the chapter's ``vocab_sz=200`` output is already close to it). Nothing needs learning; ``train`` only records the
characters seen, so that ``pieces`` / ``vocab_size`` describe the vocab a model would need.

Tokens are the characters themselves (a space is the token ``' '``), except the special tokens (fastai's
``xxbos``, ``xxmaj``, ...), which stay one token each. ``decode`` is ``''.join``, so ``decode(encode(t)) == t`` for
every string.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence

import regex

from .atomic import read_json, write_json
from .rules import SPECIAL_TOKENS

FORMAT = "awdlstm-char/1"


class CharTokenizer:
    """Text -> characters, special tokens kept whole: ``CharTokenizer()("xxbos hi")`` -> ``['xxbos', ' ', 'h', 'i']``."""

    def __init__(self, chars: Iterable[str] = (), special_tokens: Sequence[str] = SPECIAL_TOKENS):
        """``chars``: the characters of the vocab (from ``train``); encoding works on any character anyway."""
        self.special_tokens = [str(t) for t in special_tokens]
        if any(not t for t in self.special_tokens) or len(set(self.special_tokens)) != len(self.special_tokens):
            raise ValueError(f"special tokens must be non-empty and distinct, got {self.special_tokens}")
        self.chars = sorted(set(chars) - set(self.special_tokens))
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("chars must be single characters")
        self._setup()

    def _setup(self) -> None:
        alts = sorted(self.special_tokens, key=len, reverse=True)
        # a special token, or any single character (DOTALL: newlines too)
        self._re = regex.compile("|".join(regex.escape(t) for t in alts) + "|." if alts else ".", regex.DOTALL)

    @classmethod
    def train(cls, texts: Iterable[str], special_tokens: Sequence[str] = SPECIAL_TOKENS,
              min_freq: int = 1) -> CharTokenizer:
        """Record the characters that occur at least ``min_freq`` times in ``texts`` (special tokens apart)."""
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of strings, not one string")
        tok = cls((), special_tokens)
        counts: dict[str, int] = {}
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__} at index {i}")
            for t in tok.encode(text):
                counts[t] = counts.get(t, 0) + 1
        return cls([c for c, n in counts.items() if n >= min_freq and len(c) == 1], special_tokens)

    def encode(self, text: str) -> list[str]:
        """Text -> single characters, special tokens atomic."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        return self._re.findall(text)

    __call__ = encode

    def decode(self, tokens: Iterable[str]) -> str:
        """Tokens -> text (``''.join``)."""
        tokens = list(tokens)
        if not all(isinstance(t, str) for t in tokens):
            raise TypeError("decode takes strings (tokens)")
        return "".join(tokens)

    @property
    def pieces(self) -> list[str]:
        """The vocab: special tokens, then the characters seen in training (sorted)."""
        return list(self.special_tokens) + list(self.chars)

    @property
    def vocab_size(self) -> int:
        """``len(self.pieces)``."""
        return len(self.special_tokens) + len(self.chars)

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer to one JSON file (atomically)."""
        write_json(path, {"format": FORMAT, "special_tokens": self.special_tokens, "chars": self.chars})

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharTokenizer:
        """Read a tokenizer written by ``save`` (plain JSON)."""
        d = read_json(path)
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"{path}: not a char tokenizer file (expected format {FORMAT!r})")
        try:
            return cls(d["chars"], d["special_tokens"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"{path}: malformed char tokenizer file: {e}") from e

    def __getstate__(self) -> dict:
        return {"special_tokens": self.special_tokens, "chars": self.chars}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._setup()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and self.__getstate__() == other.__getstate__()

    def __repr__(self) -> str:  # the corpus cache keys on repr(tok): it must tell tokenizers apart
        state = json.dumps(self.__getstate__(), ensure_ascii=True, sort_keys=True)
        return f"CharTokenizer(vocab_size={self.vocab_size}, fingerprint={hashlib.sha256(state.encode()).hexdigest()[:16]!r})"
