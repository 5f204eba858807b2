"""The default tokenizer, fast: every cache of the word pipeline, in one place, for tokenizing a whole corpus.

``tokenize(text)`` (``corpus.py``) is the plain pipeline: fastai's rules one by one (``rules.py``), spaCy's
algorithm (``word.py``), ``replace_space``. A corpus is mostly chunks seen before ("the", "movie,", "it's"),
so ``tokenize_corpus`` chooses this file instead, which gives the same tokens by remembering work per chunk:

* :func:`apply_default_rules`: ``DEFAULT_RULES``, with the rules that only look inside one chunk cached per
  chunk (the rules cache);
* :class:`CachedWordTokenizer`: ``WordTokenizer`` with the tokens of each run of non-space characters cached
  (the run cache), a shortcut for a word with one mark ("movie,", "(the"), and the special-case pass run only
  on documents it can change;
* :class:`ChunkTokenizer`: the whole pipeline memoised per chunk, straight to type ids (the chunk memo).

``tests/test_fast.py`` checks each against its plain version, token for token.
"""

from __future__ import annotations

import operator
import re
from array import array
from collections.abc import Iterable
from itertools import chain, compress, repeat

from .rules import (
    BOS,
    DEFAULT_RULES,
    SPECIAL_TOKENS,
    fix_html,
    lowercase,
    replace_all_caps,
    replace_maj,
    replace_rep,
    replace_space,
    replace_wrep,
    rm_useless_spaces,
    spec_add_spaces,
)
from .word import WordTokenizer, _split_runs

# --- The rules cache ---------------------------------------------------------------------------------------
# Run one by one, the regexes of the rules scan every character of every text, and that costs more than the
# word tokenizer itself. But after fix_html, every rule except replace_wrep only looks inside one chunk of the
# text between two spaces (a chunk may hold other whitespace, such as newlines; that changes nothing below):
# replace_rep matches runs of one non-space character, spec_add_spaces single characters, and
# replace_all_caps / replace_maj a chunk between whitespace (or the ends of the string). rm_useless_spaces
# only changes how many spaces separate chunks, which those two rules do not look at, so it can run last.
# So the rewritten form of each chunk is cached, and the cached forms are looked up and joined at C speed
# (map over dict.__getitem__). replace_wrep needs two equal consecutive words at least; only then is it run,
# on the whole text, and if it changes anything the remaining rules run one by one.

_chunk_rules: dict[str, tuple[str, str]] = {}  # chunk -> (after replace_rep, after all chunk-local rules)
_CHUNK_RULES_SIZE = 500_000


def rewrite_chunk(chunk: str) -> tuple[str, str]:
    """The chunk-local rules on one chunk of a fix_html'd text between two spaces: (replace_rep(chunk), then
    spec_add_spaces, replace_all_caps, replace_maj), skipping the rules with nothing to do."""
    rep = replace_rep(chunk)
    out = spec_add_spaces(rep) if ("/" in rep or "#" in rep or "\\" in rep) else rep
    if out.lower() != out:  # only a chunk with capitals can change
        out = replace_maj(replace_all_caps(out))
    return rep, out


def _rewrite_chunks(chunks: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The cached rewrites of every chunk (computing the missing ones first), as two parallel tuples."""
    cache = _chunk_rules
    try:
        entries = list(map(cache.__getitem__, chunks))
    except KeyError:
        if len(cache) > _CHUNK_RULES_SIZE:
            cache.clear()
        for chunk in set(chunks).difference(cache):
            cache[chunk] = rewrite_chunk(chunk)
        entries = list(map(cache.__getitem__, chunks))
    reps, outs = zip(*entries)
    return reps, outs


def apply_default_rules(text: str) -> str:
    """``apply_rules(text)`` (``DEFAULT_RULES`` in order), exactly, with the chunk-local rules cached per chunk."""
    chunks = fix_html(text).split(" ")
    reps, outs = _rewrite_chunks(chunks)
    text = " ".join(reps)
    words = text.split()
    if any(map(operator.eq, words, words[1:])) and (wrep := replace_wrep(text)) != text:
        for rule in DEFAULT_RULES[3:]:  # rare: a word repeated; the rest of the rules one by one
            wrep = rule(wrep)
        return wrep
    return lowercase(rm_useless_spaces(" ".join(outs)))


# --- The run cache -----------------------------------------------------------------------------------------
# Runs that no affix, infix or URL rule can split (each rule needs a character outside [a-z] and [0-9]).
_PLAIN = re.compile("[a-z]+|[0-9]+").fullmatch
_ASCII_LOWER_DIGITS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_WORD_MARK = re.compile("([a-z]+)([^a-z0-9])").fullmatch  # "movie,"
_MARK_WORD = re.compile("([^a-z0-9])([a-z]+)").fullmatch  # "(the"


class CachedWordTokenizer(WordTokenizer):
    """``WordTokenizer`` memoised: the same tokens, each run of non-space characters tokenized once.

    `max_cache_size`: number of distinct runs whose tokens are remembered (as in spaCy, the cache stops growing
    when full). Step 5, the special-case pass over the whole document, only runs when a run's tokens hold a
    pattern whose replacement changes them (a run is flagged so when cached); elsewhere the pass keeps the tokens.
    """

    def __init__(self, special_cases: Iterable[str] = SPECIAL_TOKENS, max_cache_size: int = 200_000):
        super().__init__(special_cases)
        if max_cache_size < 0:
            raise ValueError(f"max_cache_size must be >= 0, got {max_cache_size}")
        self.max_cache_size = max_cache_size
        # A match is only replaced when there is no space inside it, so within one run: the patterns whose
        # replacement changes the tokens are the only ones that can make the pass do anything.
        self._changing: dict[str, list[tuple[str, ...]]] = {}
        for first, patterns in self._patterns.items():
            for pat in patterns:
                if pat != self.rules["".join(pat)]:
                    self._changing.setdefault(first, []).append(pat)
        self._cache: dict[str, list[str]] = dict(self._special)  # run -> tokens, special cases included
        self._flagged = {k for k, toks in self._special.items() if self._has_special_match(toks)}

    def _find_prefix(self, s: str) -> int:
        """As ``WordTokenizer._find_prefix``; no prefix rule starts with [a-z0-9], so those need no regex."""
        if s[0] in _ASCII_LOWER_DIGITS:
            return 0
        m = self._prefix(s)
        return m.end() if m else 0

    def _find_suffix(self, s: str) -> int:
        """As ``WordTokenizer._find_suffix``. The rules that can end with a letter a-z are "'s" and the units
        after a digit, so an all-letter string ending in a-z has none."""
        if s[-1] in _ASCII_LOWER_DIGITS and s.isalpha():
            return 0
        m = self._suffix(s)
        return m.end() - m.start() if m else 0

    def _tokenize_core(self, core: str, specials: dict) -> list[str]:
        """As ``WordTokenizer._tokenize_core``; a core of only a-z or only 0-9 (no special case) is one token."""
        if _PLAIN(core) and core not in specials:
            return [core]
        return super()._tokenize_core(core, specials)

    def tokenize_run(self, run: str, specials: dict[str, list[str]] | None = None) -> list[str]:
        """As ``WordTokenizer.tokenize_run`` (uncached), with shortcuts for the commonest shapes."""
        specials = self._special if specials is None else specials
        if run in specials:
            return list(specials[run])
        if _PLAIN(run):
            return [run]
        # After plain words: a word with one mark after or before it ("movie," "(the"). When the mark is a
        # whole suffix (prefix) and the word no special case, the affix loop ends with [word, mark]
        # ([mark, word]); this finds the same without it.
        m = _WORD_MARK(run)
        if m and m[1] not in specials and self._find_suffix(run) == 1:
            return [m[1], m[2]]
        m = _MARK_WORD(run)
        if m and m[2] not in specials and self._find_prefix(run) == 1:
            return [m[1], m[2]]
        prefixes, core, suffixes = self._split_affixes(run, specials)
        return prefixes + self._tokenize_core(core, specials) + suffixes[::-1]

    def _has_special_match(self, tokens: list[str]) -> bool:
        """Whether the tokens of one run contain a pattern that the special-case pass would replace."""
        if self._changing.keys().isdisjoint(tokens):
            return False
        for i, tok in enumerate(tokens):
            for pat in self._changing.get(tok, ()):
                if tuple(tokens[i:i + len(pat)]) == pat:
                    return True
        return False

    def run_tokens(self, run: str) -> tuple[list[str], bool]:
        """Steps 2-4 for one run of non-space characters, and whether step 5 could change its tokens."""
        tokens = self._cache.get(run)
        if tokens is not None:
            return tokens, run in self._flagged
        tokens = self.tokenize_run(run)
        flagged = self._has_special_match(tokens)
        if len(self._cache) < len(self._special) + self.max_cache_size:  # full: as in spaCy, it stops growing
            self._cache[run] = tokens
            if flagged:
                self._flagged.add(run)
        return tokens, flagged

    def _tokenize_new_runs(self, runs: list[str]) -> tuple[list[str], bool]:
        """Tokens of `runs` when some are not cached yet: tokenize and cache those, then join. Also returns
        whether a run needs the special-case pass."""
        cache, flagged = self._cache, self._flagged
        new = {run: self.tokenize_run(run) for run in set(runs).difference(cache)}
        cache.update(new)
        flagged.update(run for run, toks in new.items() if self._has_special_match(toks))
        tokens = list(chain.from_iterable(map(cache.__getitem__, runs)))
        needs_pass = not flagged.isdisjoint(runs)
        if len(cache) > len(self._special) + self.max_cache_size:  # full: as in spaCy, the cache stops growing
            for run in new:
                del cache[run]
            flagged.difference_update(new)
        return tokens, needs_pass

    def tokens_before_pass(self, text: str) -> tuple[list[str], bool]:
        """Steps 1-4 of `text`, and whether step 5 (the special-case pass) would change those tokens."""
        runs = _split_runs(text)
        try:  # all runs cached: join their tokens at C speed
            tokens = list(chain.from_iterable(map(self._cache.__getitem__, runs)))
            return tokens, not self._flagged.isdisjoint(runs)
        except KeyError:
            return self._tokenize_new_runs(runs)

    def __call__(self, text: str) -> list[str]:
        """The tokens of ``WordTokenizer()(text)``, from the run cache."""
        if not isinstance(text, str):
            raise TypeError(f"WordTokenizer expects a str, got {type(text).__name__}")
        tokens, needs_pass = self.tokens_before_pass(text)
        return self._apply_special_cases(text, tokens) if needs_pass else tokens


_default: CachedWordTokenizer | None = None


def cached_word_tokenizer() -> CachedWordTokenizer:
    """The shared `CachedWordTokenizer` with fastai's special tokens as special cases (made on first use)."""
    global _default
    if _default is None:
        _default = CachedWordTokenizer()
    return _default


def tokenize_fast(text: str) -> list[str]:
    """``tokenize(text)`` (default rules and word tokenizer, then ``replace_space``) through the caches."""
    return [t if " " not in t else replace_space(t) for t in cached_word_tokenizer()(apply_default_rules(text))]


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
