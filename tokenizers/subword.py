"""Subword tokenization (chapter 10, "Subword Tokenization"): fastai's ``SubwordTokenizer``, written from scratch.

The chapter trains SentencePiece's **unigram language model** on 2,000 IMDb reviews with ``vocab_sz`` 200, 1,000
and 10,000 and looks at the pieces: a small vocab gives short pieces and many tokens per text, a large one gives
whole words. We train the same model (the algorithm is in ``unigram.py``): unigram rather than BPE because it is
what the chapter uses, and because in numpy the whole corpus's lattices can be processed at once, so training on
the chapter's 2,000 reviews takes seconds.

How a text becomes pieces (SentencePiece's conventions, as fastai configures it):

* a space is written ``▁`` (U+2581) and a space is added in front of the text, so every word starts with ``▁``:
  ``"This movie"`` -> ``['▁This', '▁movie']``. Runs of spaces, tabs, newlines are kept exactly (no normalisation);
* a piece never mixes letters of different scripts, digits, punctuation/symbols and other whitespace
  (SentencePiece's ``split_by_unicode_script`` and ``split_by_number``): ``"movie,"`` -> ``['▁movie', ',']``;
* the special tokens (fastai's 9: ``xxunk xxpad xxbos ...``) are atomic, never split or merged. As in fastai,
  which gives them to SentencePiece as user-defined symbols ``▁xxbos`` ..., a special token preceded by a space
  is the single piece ``▁xxbos`` (counted in ``vocab_size``, as in fastai); one glued to the text before it is the
  reserved piece ``xxbos`` (not counted: a fallback, like the bytes below);
* characters too rare for the vocab (``character_coverage``) or never seen in training are written as their
  UTF-8 bytes, ``<0xE2>`` ... (SentencePiece's byte fallback). These 256 byte pieces are always available and
  are not counted in ``vocab_size``. A ``▁`` typed in the text itself is always written as bytes.

So ``decode(encode(text)) == text`` for every string. ``vocab_size`` counts what SentencePiece counts for fastai:
the special tokens (``▁xxbos`` ...), the characters and the learned pieces (``pieces``); ``reserved`` lists the
fallback pieces on top (bare special tokens, bytes). It is exact when the corpus has enough distinct substrings.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import unicodedata
from collections.abc import Iterable, Sequence

import regex
from tqdm.auto import tqdm

from .atomic import read_json, write_json
from .rules import SPECIAL_TOKENS
from .unigram import train_unigram

SPACE = "\u2581"  # ▁, how a piece shows a space
BYTE_PIECES: tuple[str, ...] = tuple(f"<0x{b:02X}>" for b in range(256))
_BYTE_VALUE = {p: b for b, p in enumerate(BYTE_PIECES)}
FORMAT = "awdlstm-subword-unigram/1"

# A segment: an optional space (the ▁ of a word) then a run of letters, of digits, of other whitespace, or of
# punctuation and symbols; a lone space is a segment too. No piece ever crosses two segments.
_SEGMENT = regex.compile(r" ?(?:[\p{L}\p{M}]+|\p{N}+|[^\S ]+|[^\p{L}\p{M}\p{N}\s]+)| ")
_SCRIPTS: dict[str, str] = {}


def _script(c: str) -> str:
    """The script of a letter, from its Unicode name ('LATIN', 'CYRILLIC', 'CJK', ...); '' for combining marks."""
    s = _SCRIPTS.get(c)
    if s is None:
        if unicodedata.category(c).startswith("M"):
            s = ""
        else:
            s = unicodedata.name(c, "UNNAMED").split(" ")[0]
            s = "CJK" if s in ("HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA") else s
        _SCRIPTS[c] = s
    return s


def segments(text: str) -> list[str]:
    """Split text (spaces included) into segments: a space then one run of one class and one script.

    ``''.join(segments(t)) == t``. Letters of different scripts go to different segments ("abcабв");
    a combining mark stays with the letter before it.
    """
    out = []
    for seg in _SEGMENT.findall(text):
        if seg.isascii() or not seg[-1].isalpha() and not unicodedata.category(seg[-1]).startswith("M"):
            out.append(seg)
            continue
        start, cur = 0, ""
        for i, c in enumerate(seg):
            s = _script(c) if c != " " else ""
            if s and cur and s != cur:
                out.append(seg[start:i])
                start = i
            cur = s or cur
        out.append(seg[start:])
    return out


class SubwordTokenizer:
    """Chapter 10's subword tokenizer: a unigram LM of pieces (SentencePiece's model), ``▁`` marks spaces.

    ``tok = SubwordTokenizer.train(texts, vocab_size=1000)``; ``tok("This movie")`` -> ``['▁This', '▁movie']``;
    ``tok.decode(pieces)`` gives the text back exactly.
    """

    def __init__(self, pieces: Sequence[tuple[str, float]], special_tokens: Sequence[str] = SPECIAL_TOKENS,
                 character_coverage: float = 0.99999):
        """Build from learned ``(piece, log-probability)`` pairs (pieces written with ``▁``); see ``train``."""
        self.special_tokens = [str(t) for t in special_tokens]
        for t in self.special_tokens:
            if not t or " " in t or SPACE in t or t in _BYTE_VALUE:
                raise ValueError(f"special token {t!r} must be non-empty, without spaces/▁, not a byte piece")
        if len(set(self.special_tokens)) != len(self.special_tokens):
            raise ValueError(f"special tokens must be distinct, got {self.special_tokens}")
        self.learned = [(str(p), float(s)) for p, s in pieces]
        for p, _ in self.learned:
            if not p or p in _BYTE_VALUE or " " in p or SPACE in p[1:]:
                raise ValueError(f"invalid piece {p!r}: empty, a byte piece, a space, or ▁ not at the start")
        self.character_coverage = float(character_coverage)
        self._setup()

    def _setup(self) -> None:
        # internally a space is ' ' (so that a typed '▁' is just an unknown character); pieces show it as '▁'
        self._scores = {p.replace(SPACE, " "): s for p, s in self.learned}
        if len(self._scores) != len(self.learned):
            raise ValueError("the learned pieces are not distinct")
        self._chars = {p for p in self._scores if len(p) == 1}
        if " " not in self._chars:
            raise ValueError("the learned pieces must include '▁' (the space)")
        self._max_len = max(len(p) for p in self._scores)
        alts = sorted(self.special_tokens, key=len, reverse=True)
        self._special_re = regex.compile(" ?(?:" + "|".join(regex.escape(t) for t in alts) + ")") if alts else None
        self._cache: dict[str, list[str]] = {}

    # --- training -------------------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, special_tokens: Sequence[str] = SPECIAL_TOKENS,
              character_coverage: float = 0.99999, max_piece_length: int = 16, seed_size: int = 1_000_000,
              shrinking_factor: float = 0.75, progress: bool = True) -> SubwordTokenizer:
        """Train SentencePiece's unigram model on ``texts`` (fastai's ``SubwordTokenizer(vocab_sz=...).setup``).

        ``vocab_size``: number of ``pieces`` (the special tokens, the characters, the learned pieces).
        ``character_coverage``: the share of characters (by count) the vocab must spell; rarer ones become
        bytes (fastai uses 0.99999 for English). Deterministic: the same texts give the same vocab.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of strings, not one string")
        if not isinstance(vocab_size, numbers.Integral) or vocab_size <= 0:
            raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
        if not 0 < character_coverage <= 1:
            raise ValueError(f"character_coverage must be in (0, 1], got {character_coverage!r}")
        if not 1 <= max_piece_length <= 16:
            raise ValueError(f"max_piece_length must be in [1, 16], got {max_piece_length!r}")
        probe = cls([(SPACE, 0.0)], special_tokens)  # for its special-token splitting
        counts: dict[str, int] = {}
        n_texts = 0
        for text in tqdm(texts, desc="subword: counting", disable=not progress, leave=False):
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__} at index {n_texts}")
            n_texts += 1
            for kind, part in probe._parts(text):
                if kind == "text":
                    for seg in segments(part):
                        counts[seg] = counts.get(seg, 0) + 1
        if not n_texts:
            raise ValueError("texts is empty: a subword vocab needs training texts")
        keep = cls._covered_chars(counts, character_coverage)
        split: dict[str, int] = {}  # segments cut at the characters left to bytes
        for seg, n in counts.items():
            for run in _covered_runs(seg, keep):
                split[run] = split.get(run, 0) + n
        if not split:
            raise ValueError("the training texts have no characters outside the special tokens")
        split[" "] = split.get(" ", 0) + 1  # ▁ is always a piece, even if no training text has a space
        n_pieces = int(vocab_size) - len(probe.special_tokens)
        if n_pieces < 1:
            raise ValueError(f"vocab_size={vocab_size} leaves no room after the {len(special_tokens)} special tokens")
        learned = train_unigram(split, n_pieces, max_piece_length, seed_size, shrinking_factor, progress=progress)
        return cls([(p.replace(" ", SPACE), s) for p, s in learned], special_tokens, character_coverage)

    @staticmethod
    def _covered_chars(counts: dict[str, int], coverage: float) -> set[str]:
        """The most frequent characters that together make ``coverage`` of all characters; space always."""
        chars: dict[str, int] = {}
        for seg, n in counts.items():
            for c in seg:
                chars[c] = chars.get(c, 0) + n
        chars.pop(SPACE, None)  # a typed ▁ is always written as bytes
        total = sum(chars.values())
        keep, acc = {" "}, 0
        for c, n in sorted(chars.items(), key=lambda cn: (-cn[1], cn[0])):
            if acc >= coverage * total:
                break
            keep.add(c)
            acc += n
        return keep

    # --- encoding -------------------------------------------------------------------------------------
    def _parts(self, text: str) -> list[tuple[str, str]]:
        """Split ``' ' + text`` into ('special', token) and ('text', chunk) parts."""
        text = " " + text
        if self._special_re is None:
            return [("text", text)]
        parts, pos = [], 0
        for m in self._special_re.finditer(text):
            if m.start() > pos:
                parts.append(("text", text[pos:m.start()]))
            parts.append(("special", m.group()))
            pos = m.end()
        if pos < len(text):
            parts.append(("text", text[pos:]))
        return parts

    def _encode_segment(self, seg: str) -> list[str]:
        """Best (Viterbi) pieces of one segment; characters outside the vocab become bytes."""
        out: list[str] = []
        pos = 0
        for run in _covered_runs(seg, self._chars):
            start = seg.index(run, pos)
            for c in seg[pos:start]:
                out.extend(_bytes(c))
            out.extend(p.replace(" ", SPACE) for p in self._viterbi(run))
            pos = start + len(run)
        for c in seg[pos:]:
            out.extend(_bytes(c))
        return out

    def _viterbi(self, s: str) -> list[str]:
        scores, M, n = self._scores, self._max_len, len(s)
        best, back = [0.0] + [-float("inf")] * n, [0] * (n + 1)
        for k in range(1, n + 1):
            bk, bl = -float("inf"), 1
            for ln in range(1, min(k, M) + 1):
                sc = scores.get(s[k - ln:k])
                if sc is not None and best[k - ln] + sc > bk:
                    bk, bl = best[k - ln] + sc, ln
            best[k], back[k] = bk, bl
        out, k = [], n
        while k > 0:
            out.append(s[k - back[k]:k])
            k -= back[k]
        return out[::-1]

    def encode(self, text: str) -> list[str]:
        """Text -> pieces (chapter 10: ``▁This ▁movie , ▁which ...``). ``''`` -> ``[]``."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        if not text:
            return []
        out: list[str] = []
        cache = self._cache
        for kind, part in self._parts(text):
            if kind == "special":
                out.append(part.replace(" ", SPACE))
                continue
            for seg in segments(part):
                pieces = cache.get(seg)
                if pieces is None:
                    if len(cache) > 200_000:
                        cache.clear()
                    pieces = cache[seg] = self._encode_segment(seg)
                out.extend(pieces)
        return out

    __call__ = encode

    def decode(self, pieces: Iterable[str]) -> str:
        """Pieces -> text: ``▁`` becomes a space, byte pieces become their characters, the added space goes."""
        out: list[str] = []
        buf = bytearray()
        first = None
        for p in pieces:
            if not isinstance(p, str):
                raise TypeError(f"decode takes strings (pieces), got {type(p).__name__}")
            if first is None:
                first = p
            b = _BYTE_VALUE.get(p)
            if b is not None:
                buf.append(b)
                continue
            if buf:
                out.append(_decode_bytes(buf))
                buf.clear()
            out.append(p.replace(SPACE, " "))
        if buf:
            out.append(_decode_bytes(buf))
        text = "".join(out)
        return text[1:] if first is not None and first.startswith(SPACE) else text

    # --- vocab, save, load ------------------------------------------------------------------------------
    @property
    def pieces(self) -> list[str]:
        """The vocab: the special tokens (``▁xxunk``, ``▁xxpad``, ...), then the learned pieces by score."""
        return [SPACE + t for t in self.special_tokens] + [p for p, _ in self.learned]

    @property
    def reserved(self) -> list[str]:
        """Fallback pieces, not in ``pieces``: special tokens glued to the text before them, the 256 bytes."""
        return list(self.special_tokens) + list(BYTE_PIECES)

    @property
    def vocab_size(self) -> int:
        """``len(self.pieces)``: what ``train`` was asked for (``reserved`` comes on top)."""
        return len(self.special_tokens) + len(self.learned)

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer to one JSON file (atomically)."""
        write_json(path, {"format": FORMAT, "special_tokens": self.special_tokens,
                          "character_coverage": self.character_coverage,
                          "pieces": [[p, s] for p, s in self.learned]})

    @classmethod
    def load(cls, path: str | os.PathLike) -> SubwordTokenizer:
        """Read a tokenizer written by ``save`` (plain JSON; nothing is executed)."""
        d = read_json(path)
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"{path}: not a subword tokenizer file (expected format {FORMAT!r})")
        try:
            return cls([(p, s) for p, s in d["pieces"]], d["special_tokens"], d["character_coverage"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: malformed subword tokenizer file: {e}") from e

    def __getstate__(self) -> dict:
        return {"special_tokens": self.special_tokens, "learned": self.learned,
                "character_coverage": self.character_coverage}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._setup()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SubwordTokenizer) and self.__getstate__() == other.__getstate__()

    @property
    def fingerprint(self) -> str:
        """A hash of the whole state: two tokenizers that encode differently have different fingerprints."""
        state = json.dumps(self.__getstate__(), ensure_ascii=True, sort_keys=True)
        return hashlib.sha256(state.encode()).hexdigest()[:16]

    def __repr__(self) -> str:  # the corpus cache keys on repr(tok): it must tell trained tokenizers apart
        return f"SubwordTokenizer(vocab_size={self.vocab_size}, fingerprint={self.fingerprint!r})"


def _bytes(c: str) -> list[str]:
    """A character as its UTF-8 byte pieces (SentencePiece's byte fallback)."""
    return [BYTE_PIECES[b] for b in c.encode("utf-8", "surrogatepass")]


def _decode_bytes(buf: bytearray) -> str:
    try:
        return buf.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # pieces that were not made by encode
        return buf.decode("utf-8", "replace")


def _covered_runs(seg: str, chars: set[str] | frozenset[str]) -> list[str]:
    """The maximal runs of ``seg`` made only of characters in ``chars``."""
    runs, run = [], []
    for c in seg:
        if c in chars:
            run.append(c)
        elif run:
            runs.append("".join(run))
            run = []
    if run:
        runs.append("".join(run))
    return runs
