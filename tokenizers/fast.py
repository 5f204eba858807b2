"""The default tokenizer for a whole corpus, fast: `ChunkTokenizer`, the pipeline memoised per chunk, to ids.

``tokenize(text)`` (``corpus.py``) is the plain pipeline: fastai's rules one by one (``rules.py``), spaCy's
algorithm (``word.py``), ``replace_space``. A corpus is mostly chunks seen before ("the", "movie,", "it's"),
so ``tokenize_corpus`` chooses this file instead, which gives the same tokens, as type ids, by remembering
the final ids of each chunk (the chunk memo). It builds on the caches for one text in ``word_fast.py`` (the
rules cache, the run cache), re-exported here.

``tests/test_fast.py`` checks it against the plain pipeline, token for token.
"""

from __future__ import annotations

import operator
from array import array
from itertools import compress, repeat

from .rules import BOS, fix_html, replace_space, replace_wrep, rm_useless_spaces
from .word_fast import (
    CachedWordTokenizer,
    apply_default_rules,
    cached_word_tokenizer,
    rewrite_chunk,
    tokenize_fast,
)

__all__ = ["ChunkTokenizer", "CachedWordTokenizer", "apply_default_rules", "cached_word_tokenizer", "rewrite_chunk",
           "tokenize_fast"]  # all but the first: word_fast.py's

# --- The chunk memo: the whole pipeline per chunk, straight to ids -------------------------------------------
# ``tokenize(text)`` runs fastai's rules over the whole string, then spaCy's tokenizer over the result. Both
# steps are local to the chunks of the text between two spaces, with few exceptions, so
# :class:`ChunkTokenizer` maps each chunk of the ``fix_html``'d text (``text.split(" ")``) to the type ids
# of its final tokens once, and a document becomes ``xxbos`` followed by its chunks' ids, looked up and
# joined at C speed. Per document, only ``fix_html``, one split and the lookups are left.
#
# The exceptions, which send a document the exact, slower way (the rules on the whole text, then the word
# tokenizer):
#
# * a word repeated (``replace_wrep``): it looks across chunks. Only documents with two equal consecutive
#   words after ``replace_rep`` are checked, by running ``replace_wrep``, and only if it changes the text is
#   the document sent the slow way;
# * a chunk whose tokens hold one of spaCy's special cases that its matcher pass would change (``:)`` glued
#   to a word): that pass looks at the whole document.
#
# Whitespace other than " " at the start or end of a chunk (the "\n\n" of "film. <br /><br />The") makes
# spaCy's whitespace tokens, which depend on the neighbouring chunks: those are worked out per document from
# what each chunk has at its ends. A chunk's ids are stored as int32 bytes, so joining them is one
# ``bytes.join``, with no Python object per token.
#
# Type ids are given in the order tokens are first seen (a chunk's tokens only once its document is known to
# take the fast path), so ``types`` equals the first-seen order of :func:`tokenize`'s output, which is what
# fastai's vocab tie order needs.


class ChunkTokenizer:
    """fastai's default tokenization (``tokenize``) of many texts, memoised per chunk: texts -> type ids.

    ``ct.encode(text)`` gives the ids of ``tokenize(text)`` in ``ct.types`` (the distinct tokens, in
    first-seen order) as int32 bytes (``np.frombuffer(b, np.int32)``). ``max_chunks`` bounds the memo (it is
    emptied when full; the types stay).
    """

    def __init__(self, max_chunks: int = 2_000_000):
        self.types: list[str] = []
        self.index: dict[str, int] = {}
        self.max_chunks = max_chunks
        self._words = cached_word_tokenizer()
        self._ids: dict[str, bytes] = {}  # chunk -> the int32 ids of its tokens
        self._pending: dict[str, list[str]] = {}  # chunk -> its tokens, not yet given ids
        self._unsafe: set[str] = set()  # chunks whose tokens depend on the rest of the document
        self._rep: dict[str, str] = {}  # chunk -> replace_rep(chunk), for the chunks it rewrites
        self._edges: dict[str, tuple[str, str, bool]] = {}  # chunk -> whitespace at its ends, has other tokens
        self._marked: set[str] = set()  # the keys of _rep and _edges: one test tells a plain document
        self._bos = self._ids_of([BOS])
        self._reported = 0  # types handed out by new_types()

    def new_types(self) -> list[str]:
        """The types added since the last call (all of them, the first time)."""
        new = self.types[self._reported:]
        self._reported = len(self.types)
        return new

    def _intern(self, token: str) -> int:
        i = self.index.get(token)
        if i is None:
            i = self.index[token] = len(self.types)
            self.types.append(token)
        return i

    def _ids_of(self, tokens: list[str]) -> bytes:
        """The int32 ids of `tokens` (after replace_space), giving new types the next ids."""
        if " " in "".join(tokens):
            tokens = [replace_space(t) for t in tokens]
        ids = list(map(self.index.get, tokens))
        if None in ids:
            ids = [self._intern(t) for t in tokens]
        return array("i", ids).tobytes()

    def _analyse(self, chunk: str) -> None:
        """Rules and word tokenizer on one new chunk: its tokens into ``_pending``, or the chunk into ``_unsafe``."""
        rep, out = rewrite_chunk(chunk)
        if rep != chunk:
            self._rep[chunk] = rep
            self._marked.add(chunk)
        out = (rm_useless_spaces(out) if "  " in out else out).strip(" ").lower()
        core = out.strip()  # every whitespace character: what lowercase's strip() and spaCy see as space
        if core != out:  # whitespace other than " " at an end: spaCy's whitespace tokens depend on the neighbours
            start = out.index(core[0]) if core else len(out)
            self._edges[chunk] = (out[:start], out[start + len(core):], bool(core))
            self._marked.add(chunk)
        if core.isprintable():  # no whitespace but single " ": the runs are the words between spaces
            tokens, needs_pass = [], False
            for run in core.split(" ") if core else ():
                run_tokens, flagged = self._words.run_tokens(run)
                tokens += run_tokens
                needs_pass |= flagged
        else:
            tokens, needs_pass = self._words.tokens_before_pass(core)
        if needs_pass:
            self._unsafe.add(chunk)
        else:
            self._pending[chunk] = tokens

    def _no_word_repetition(self, text: str, chunks: list[str], plain: bool) -> bool:
        """Whether replace_wrep leaves the text alone (the one rule that looks across chunks). It needs a word
        repeated (words split at whitespace, after replace_rep), so that is looked for first. `plain`: no
        chunk of the text is marked (rewritten by replace_rep, or with whitespace at an end)."""
        if not plain and not self._rep.keys().isdisjoint(chunks):
            text = " ".join(map(self._rep.get, chunks, chunks))  # = replace_rep(text)
            words = text.split()
        elif not text.isprintable():  # whitespace other than " " ("\n"): split at all of it
            words = text.split()
        else:
            words = chunks if "" not in chunks else [c for c in chunks if c]
        return not any(map(operator.eq, words, words[1:])) or replace_wrep(text) == text

    def _whitespace_tokens(self, chunks: list[str]) -> dict[int, str]:
        """For a document with whitespace other than " " at the ends of chunks (a newline): chunk index ->
        the whitespace token before that chunk's tokens. The whitespace between two words is gathered as it
        stands in the rewritten text and becomes a token as in spaCy (without the single " " that trails a
        word); before the first word lowercase strips it (and after the last, which is never emitted)."""
        edges = self._edges
        before: dict[int, str] = {}
        ws = None  # the whitespace since the last word (without the " " before the next chunk); None: no word yet
        for i, c in enumerate(chunks):
            edge = edges.get(c)
            if edge is None:
                if c:  # a chunk with no whitespace at its ends: a word
                    if ws and (tok := _whitespace_token(ws + " ")):
                        before[i] = tok
                    ws = ""
                elif ws is not None:  # an empty chunk (two spaces in a row)
                    ws += " "
                continue
            lead, trail, has_core = edge
            if ws is not None and not has_core:  # whitespace only
                ws += " " + lead + trail
            elif has_core:
                if ws is not None and (ws or lead) and (tok := _whitespace_token(ws + " " + lead)):
                    before[i] = tok
                ws = trail
        return before

    def _join(self, chunks: list[str], new: list[str], plain: bool) -> bytes:
        """The ids of a fast document: xxbos, then each chunk's ids (and the whitespace tokens between them).

        ``new`` holds the chunks met for the first time, in order: their tokens (and the whitespace tokens)
        are given ids in the order they appear in the document."""
        known, pending = self._ids, self._pending
        before = {} if plain or self._edges.keys().isdisjoint(chunks) else self._whitespace_tokens(chunks)
        if before and new:  # interleave the new chunks and the whitespace tokens by position
            first = {c: i for i, c in reversed(list(enumerate(chunks))) if c in pending}
            events = sorted([(i, 0, t) for i, t in before.items()] + [(first[c], 1, c) for c in new])
            for _, is_chunk, x in events:
                if is_chunk:
                    known[x] = self._ids_of(pending.pop(x))
                else:
                    self._intern(replace_space(x))
        else:
            for c in new:
                known[c] = self._ids_of(pending.pop(c))
        if not before:
            return self._bos + b"".join(map(known.__getitem__, chunks))
        parts, start = [self._bos], 0
        for i, tok in sorted(before.items()):
            parts += [*map(known.__getitem__, chunks[start:i]), self._ids_of([tok])]
            start = i
        parts += map(known.__getitem__, chunks[start:])
        return b"".join(parts)

    def encode(self, text: str) -> bytes:
        """The type ids of ``tokenize(text)`` (fastai's rules + the word tokenizer + replace_space), int32 bytes."""
        if len(self._ids) + len(self._pending) > self.max_chunks:  # full: start the memo again
            for memo in (self._ids, self._pending, self._unsafe, self._rep, self._edges, self._marked):
                memo.clear()
        html_fixed = fix_html(text)
        chunks = html_fixed.split(" ")
        known = self._ids
        try:  # every chunk known (an unsafe chunk never is): the common case
            ids, new = b"".join(map(known.__getitem__, chunks)), []
        except KeyError:  # the new chunks, in the order they first appear
            ids, new = None, list(dict.fromkeys(compress(chunks, map(operator.is_, map(known.get, chunks), repeat(None)))))
            for c in new:
                if c not in self._pending and c not in self._unsafe:
                    self._analyse(c)
            if not self._unsafe.isdisjoint(new):
                return self._ids_of(self._words(apply_default_rules(text)))  # exact: the whole text
        plain = self._marked.isdisjoint(chunks)
        if not self._no_word_repetition(html_fixed, chunks, plain):
            return self._ids_of(self._words(apply_default_rules(text)))
        if ids is not None and plain:
            return self._bos + ids
        return self._join(chunks, new, plain)


def _whitespace_token(run: str) -> str:
    """spaCy's token for the whitespace `run` between two words: the run with spaces collapsed (the rules'
    rm_useless_spaces), less the single " " that trails the word before it (may be empty: no token)."""
    run = rm_useless_spaces(run)
    return run[1:] if run[:1] == " " else run
