"""Word tokenization: spaCy 3's English tokenizer, rewritten with regular expressions.

Chapter 10, "Word Tokenization with fastai": fastai's default word tokenizer is spaCy's English tokenizer
(`spacy.blank("en")`, no model) with fastai's special tokens (xxbos, xxmaj, ...) added as special cases.
This module reproduces it token for token (spaCy 3.8) without spaCy. The algorithm:

1. Whitespace pass. The text is cut into maximal runs of space / non-space characters (`str.isspace`).
   A single " " right after a word is that word's trailing space and is dropped; any other whitespace run
   (a newline, a second space, "\\n ") is kept as a token of its own.
2. Each non-space chunk is looked up in the special cases ("don't" -> "do", "n't") and in a cache.
3. Otherwise affixes are split off, repeatedly: a prefix (the first matching rule in list order: "(",
   '"', "$" ...) and a suffix (the longest: ")", ".", "'s", "km" after a digit ...), stopping as soon as
   what is left is a special case.
4. What is left is one token if it is a URL, else it is split at infixes (a hyphen between letters,
   "...", "/" between letters ...).
5. A last pass over the document merges token sequences that spell a special case containing affix
   characters (":", ")" -> ":)" when the emoticon was glued to other text).

The tables (character classes, rules, exceptions) are in `spacy_tables.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import chain

import regex

from .rules import SPECIAL_TOKENS
from .spacy_tables import EXCEPTIONS, INFIXES, PREFIXES, SUFFIXES, URL_PATTERN

# Every character for which str.isspace() is true (what spaCy splits on); all are below U+3001.
_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_WS = "".join(f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" for c in _WHITESPACE)
# Whitespace runs that make tokens: two or more whitespace characters, or one that is not " ". (Written to
# start with a character class, which lets `re` scan fast.)
_WS_TOKEN = re.compile(f"([{_WS}](?:(?<! )[{_WS}]*|[{_WS}]+))")
# Chunks that no affix, infix or URL rule can split (each rule needs a character outside [a-z] and [0-9]).
_PLAIN = re.compile("[a-z]+|[0-9]+").fullmatch
_ASCII_LOWER_DIGITS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_WORD_MARK = re.compile("([a-z]+)([^a-z0-9])").fullmatch  # "movie,"
_MARK_WORD = re.compile("([^a-z0-9])([a-z]+)").fullmatch  # "(the"


def _split_runs(text: str) -> list[str]:
    """Step 1: the non-space chunks and the whitespace tokens of `text`, in order."""
    chunks = text.split()  # str.split() splits on str.isspace() characters, as spaCy does
    joined = " ".join(chunks)
    if text == joined or (chunks and len(text) == len(joined) + 1 and text[-1] == " " and text.startswith(joined)):
        return chunks  # the common case: words separated by single spaces (and maybe one trailing space)
    parts = _WS_TOKEN.split(text)  # [words, whitespace, words, whitespace, ..., words]
    runs = [" "] if parts[0][:1] == " " else []  # a single leading space is a token too
    for k, part in enumerate(parts):
        if k % 2 == 0:
            runs.extend(part.split())
        elif part[0] == " " and (k > 1 or parts[0]):  # after a word: its trailing space is not a token
            runs.append(part[1:])
        else:
            runs.append(part)
    return runs


def _compile_prefixes(prefixes: list[str]) -> regex.Pattern:
    """'^p1|^p2|...': `match` gives the first alternative (in list order) that matches at the start."""
    return regex.compile("|".join("^" + p for p in prefixes if p.strip()))


def _compile_suffixes(suffixes: list[str]) -> regex.Pattern:
    """spaCy searches 's1$|s2$|...' left to right, so the suffix that starts earliest (the longest) wins.

    A forward search tries every start position; we compile the rules with `regex`'s reverse flag, whose
    `match` tries them once, at the end, and takes the first alternative that fits. That is the longest one
    when no shorter alternative that can also end the string comes first. The only such pair in spaCy's list is
    "…" before "……" (the digit-lookbehind units and currencies, "'s" and `\\.\\.+` fit at one length only), so
    "……" is moved in front. Tests compare this with the forward search.
    """
    order = [p for p in suffixes if p.strip()]
    order.remove("……")
    order.insert(order.index("…"), "……")
    return regex.compile("(?r)(?:" + "|".join(order) + ")$")


def _fast_url_pattern() -> str:
    """spaCy's URL pattern with its "user:password@" part `\\S+(?::\\S*)?@` written `\\S+@`: both match the same
    strings (":" is a non-space too), so the anchored match accepts the same chunks, but the original backtracks
    quadratically on long chunks with many ":" and "@" (100,000 characters took minutes)."""
    slow = r"(?:\S+(?::\S*)?@)?"
    assert slow in URL_PATTERN
    return URL_PATTERN.replace(slow, r"(?:\S+@)?")


def forward_suffix_regex(suffixes: list[str] = SUFFIXES) -> re.Pattern:
    """spaCy's own suffix regex ('s1$|s2$|...', searched forward); the tests use it as the reference."""
    return re.compile("|".join(p + "$" for p in suffixes if p.strip()))


class WordTokenizer:
    """spaCy 3's English tokenizer as fastai uses it (`SpacyTokenizer`): the book's word tokenizer.

    `WordTokenizer()(text)` gives the token texts spaCy gives, whitespace tokens included ('\\n\\n ').
    `special_cases`: strings always kept as one token (default: fastai's 9 special tokens, as fastai adds them).
    `max_cache_size`: number of distinct chunks whose tokens are remembered.
    """

    def __init__(self, special_cases: Iterable[str] = SPECIAL_TOKENS, max_cache_size: int = 200_000):
        if isinstance(special_cases, str):
            raise TypeError("special_cases must be an iterable of strings, not a single string")
        self.rules: dict[str, tuple[str, ...]] = dict(EXCEPTIONS)
        for s in special_cases:
            if not isinstance(s, str) or not s or any(c.isspace() for c in s):
                raise ValueError(f"a special case must be a non-empty string without whitespace, got {s!r}")
            self.rules[s] = (s,)
        if max_cache_size < 0:
            raise ValueError(f"max_cache_size must be >= 0, got {max_cache_size}")
        self.max_cache_size = max_cache_size
        self._prefix = _compile_prefixes(PREFIXES).match
        self._suffix = _compile_suffixes(SUFFIXES).match
        self._infixes = regex.compile("|".join(p for p in INFIXES if p.strip())).finditer
        self._url = re.compile("(?u)" + _fast_url_pattern()).match  # `re`, as spaCy: its \w, \d and \S
        self._special = {k: list(v) for k, v in self.rules.items()}
        self._build_matcher()
        self._cache: dict[str, list[str]] = dict(self._special)  # chunk -> tokens, special cases included

    # --- steps 3-4: one chunk --------------------------------------------------------------------------------
    def _find_prefix(self, s: str) -> int:
        """Length of the prefix at the start of `s` (0 if none). No prefix rule starts with [a-z0-9]."""
        if s[0] in _ASCII_LOWER_DIGITS:
            return 0
        m = self._prefix(s)
        return m.end() if m else 0

    def _find_suffix(self, s: str) -> int:
        """Length of the suffix at the end of `s` (0 if none). The rules that can end with a letter a-z
        are "'s" and the units after a digit, so an all-letter string ending in a-z has none."""
        if s[-1] in _ASCII_LOWER_DIGITS and s.isalpha():
            return 0
        m = self._suffix(s)
        return m.end() - m.start() if m else 0

    def _split_affixes(self, s: str, specials: dict) -> tuple[list[str], str, list[str]]:
        """Strip prefixes and suffixes off `s` until nothing changes or the rest is a special case."""
        prefixes: list[str] = []
        suffixes: list[str] = []  # in the order found (outermost first)
        last_len = -1
        while s and len(s) != last_len:
            if s in specials:
                break
            last_len = len(s)
            pre_len = self._find_prefix(s)
            if pre_len and s[pre_len:] in specials:
                prefixes.append(s[:pre_len])
                return prefixes, s[pre_len:], suffixes
            rest = s[pre_len:] if pre_len else s  # the suffix is found without the prefix (for lookbehinds)
            suf_len = self._find_suffix(rest) if rest else 0
            if suf_len and len(s) > suf_len and s[:-suf_len] in specials:
                suffixes.append(s[-suf_len:])
                return prefixes, s[:-suf_len], suffixes
            if pre_len:
                prefixes.append(s[:pre_len])
            if suf_len:
                suffixes.append(s[-suf_len:])
            s = s[pre_len:len(s) - suf_len]
        return prefixes, s, suffixes

    def _tokenize_chunk(self, chunk: str, specials: dict) -> list[str]:
        """Tokens of one chunk that is not a special case: prefixes, the core (special case, URL or split
        at infixes), suffixes."""
        if _PLAIN(chunk):
            return [chunk]
        # The commonest shapes after plain words: a word with one mark after or before it ("movie," "(the").
        # When the mark is a whole suffix (prefix) and the word no special case, the loop below ends with
        # [word, mark] ([mark, word]); this finds the same without it.
        m = _WORD_MARK(chunk)
        if m and m[1] not in specials and self._find_suffix(chunk) == 1:
            return [m[1], m[2]]
        m = _MARK_WORD(chunk)
        if m and m[2] not in specials and self._find_prefix(chunk) == 1:
            return [m[1], m[2]]
        return self._tokenize_affixed(chunk, specials)

    def _tokenize_affixed(self, chunk: str, specials: dict) -> list[str]:
        """Steps 3-4 for any chunk: prefixes, the core (special case, URL or split at infixes), suffixes."""
        tokens, core, suffixes = self._split_affixes(chunk, specials)
        if core in specials:
            tokens.extend(specials[core])
        elif not core:
            pass
        elif _PLAIN(core) or self._url(core):
            tokens.append(core)
        else:
            start = 0
            for m in self._infixes(core):
                i, j = m.span()
                if i == 0:  # an infix at the very start is not split off
                    continue
                if i != start:
                    tokens.append(core[start:i])
                if i != j:
                    tokens.append(core[i:j])
                start = j
            if start < len(core):
                tokens.append(core[start:])
        tokens.extend(reversed(suffixes))
        return tokens

    def _tokenize_uncached(self, text: str) -> list[str]:
        """Steps 1-4 with no special cases and no cache: what spaCy builds its matcher patterns with."""
        return [tok for run in _split_runs(text) for tok in self._tokenize_chunk(run, {})]

    # --- step 2: the chunk cache -----------------------------------------------------------------------------
    def _tokenize_new_runs(self, runs: list[str]) -> tuple[list[str], bool]:
        """Tokens of `runs` when some are not cached yet: tokenize and cache those, then join. Also returns
        whether a run needs the special-case pass."""
        cache, flagged = self._cache, self._flagged
        new = {run: self._tokenize_chunk(run, self._special) for run in set(runs).difference(cache)}
        cache.update(new)
        flagged.update(run for run, toks in new.items() if self._has_special_match(toks))
        tokens = list(chain.from_iterable(map(cache.__getitem__, runs)))
        needs_pass = not flagged.isdisjoint(runs)
        if len(cache) > len(self._special) + self.max_cache_size:  # full: as in spaCy, the cache stops growing
            for run in new:
                del cache[run]
            flagged.difference_update(new)
        return tokens, needs_pass

    # --- step 5: special cases that the affix rules split ----------------------------------------------------
    def _build_matcher(self) -> None:
        """spaCy puts every special case that contains an affix (or a space) into a phrase matcher, as the
        tokens the affix rules alone make of it ("(:" -> "(", ":"). We index these patterns by first token.

        A match is only replaced when there is no space inside it, so within one chunk. A chunk is therefore
        flagged (and cached as such) when its tokens contain a pattern whose special case tokenizes
        differently, and only documents with a flagged chunk go through the exact, document-wide pass."""
        self._patterns: dict[str, list[tuple[str, ...]]] = {}
        self._changing: dict[str, list[tuple[str, ...]]] = {}  # the patterns a replacement would change
        for key in sorted(self.rules):
            if self._find_prefix(key) or self._find_suffix(key) or any(True for _ in self._infixes(key)) or " " in key:
                pattern = tuple(self._tokenize_uncached(key))
                self._patterns.setdefault(pattern[0], []).append(pattern)
                if pattern != self.rules[key]:
                    self._changing.setdefault(pattern[0], []).append(pattern)
        self._flagged = {k for k, toks in self._special.items() if self._has_special_match(toks)}

    def _has_special_match(self, tokens: list[str]) -> bool:
        """Whether the tokens of one chunk contain a pattern that the special-case pass would replace."""
        if self._changing.keys().isdisjoint(tokens):
            return False
        for i, tok in enumerate(tokens):
            for pat in self._changing.get(tok, ()):
                if tuple(tokens[i:i + len(pat)]) == pat:
                    return True
        return False

    def _apply_special_cases(self, text: str, tokens: list[str]) -> list[str]:
        """spaCy's matcher pass: find every occurrence of every pattern, keep the longest (then earliest) of
        overlapping ones, and replace each kept one with no space inside by its special case's tokens."""
        n = len(tokens)
        matches = []
        for i, tok in enumerate(tokens):
            for pat in self._patterns.get(tok, ()):
                if i + len(pat) <= n and tuple(tokens[i:i + len(pat)]) == pat:
                    matches.append((i, i + len(pat)))
        matches.sort(key=lambda m: (m[0] - m[1], m[0]))  # longest first, then earliest
        seen: set[int] = set()
        kept = []
        for start, end in matches:
            if start not in seen and end - 1 not in seen:
                kept.append((start, end))
            seen.update(range(start, end))  # as in spaCy, a rejected match also blocks its tokens
        spaced = _trailing_spaces(text, tokens)
        out: list[str] = []
        pos = 0
        for start, end in sorted(kept):
            if any(spaced[start:end - 1]):  # its text has a space: no special case spells it
                continue
            out.extend(tokens[pos:start])
            out.extend(self.rules["".join(tokens[start:end])])
            pos = end
        out.extend(tokens[pos:])
        return out

    def run_tokens(self, run: str) -> tuple[list[str], bool]:
        """Steps 2-4 for one run of non-space characters, and whether step 5 could change its tokens."""
        tokens = self._cache.get(run)
        if tokens is not None:
            return tokens, run in self._flagged
        tokens = self._tokenize_chunk(run, self._special)
        flagged = self._has_special_match(tokens)
        if len(self._cache) < len(self._special) + self.max_cache_size:  # full: as in spaCy, it stops growing
            self._cache[run] = tokens
            if flagged:
                self._flagged.add(run)
        return tokens, flagged

    def tokens_before_pass(self, text: str) -> tuple[list[str], bool]:
        """Steps 1-4 of `text`, and whether step 5 (the special-case pass) would change those tokens."""
        runs = _split_runs(text)
        try:  # all runs cached: join their tokens at C speed
            tokens = list(chain.from_iterable(map(self._cache.__getitem__, runs)))
            return tokens, not self._flagged.isdisjoint(runs)
        except KeyError:
            return self._tokenize_new_runs(runs)

    def __call__(self, text: str) -> list[str]:
        """Tokenize `text` as spaCy's English tokenizer: `WordTokenizer()("don't stop.")` -> ['do', "n't", 'stop', '.']."""
        if not isinstance(text, str):
            raise TypeError(f"WordTokenizer expects a str, got {type(text).__name__}")
        tokens, needs_pass = self.tokens_before_pass(text)
        return self._apply_special_cases(text, tokens) if needs_pass else tokens


def _trailing_spaces(text: str, tokens: list[str]) -> list[bool]:
    """For each token, whether spaCy gave it a trailing space (the single ' ' right after a non-space token)."""
    spaced = []
    pos, n = 0, len(text)
    for tok in tokens:
        pos += len(tok)
        sp = pos < n and text[pos] == " " and not tok[-1].isspace()
        spaced.append(sp)
        pos += sp
    return spaced


_default: WordTokenizer | None = None


def default_word_tokenizer() -> WordTokenizer:
    """The shared `WordTokenizer` with fastai's special tokens as special cases (made on first use)."""
    global _default
    if _default is None:
        _default = WordTokenizer()
    return _default


def word_tokenize(text: str) -> list[str]:
    """Word tokenization with the shared default `WordTokenizer` (fastai's special tokens as special cases)."""
    return default_word_tokenizer()(text)
