"""The default tokenizer's caches for one text: fastai's rules per chunk, spaCy's algorithm per run.

``tokenize(text)`` (``corpus.py``) is the plain pipeline of chapter 10's word tokenization: fastai's rules
one by one (``rules.py``), spaCy's algorithm (``word.py``), ``replace_space``. Text is mostly chunks seen
before ("the", "movie,", "it's"), so this file gives the same tokens by remembering work:

* :func:`apply_default_rules`: ``DEFAULT_RULES``, with the rules that only look inside one chunk cached per
  chunk (the rules cache);
* :class:`CachedWordTokenizer`: ``WordTokenizer`` with the tokens of each run of non-space characters cached
  (the run cache), a shortcut for a word with one mark ("movie,", "(the"), and the special-case pass run only
  on documents it can change;
* :func:`tokenize_fast`: both, then ``replace_space``: ``tokenize(text)``.

``fast.py`` builds on them to memoise the whole pipeline per chunk for a corpus (``ChunkTokenizer``).
``tests/test_rules.py``, ``tests/test_word.py`` and ``tests/test_fast.py`` check each against its plain
version, token for token.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from itertools import chain

from .rules import (
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
