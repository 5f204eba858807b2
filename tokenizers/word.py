"""Word tokenization: spaCy 3's English tokenizer, rewritten with regular expressions.

Chapter 10, "Word Tokenization with fastai": fastai's default word tokenizer is spaCy's English tokenizer
(`spacy.blank("en")`, no model) with fastai's special tokens (xxbos, xxmaj, ...) added as special cases.
This module reproduces it token for token (spaCy 3.8) without spaCy. The algorithm:

1. Whitespace pass. The text is cut into maximal runs of space / non-space characters (`str.isspace`).
   A single " " right after a word is that word's trailing space and is dropped; any other whitespace run
   (a newline, a second space, "\\n ") is kept as a token of its own.
2. Each non-space chunk is looked up in the special cases ("don't" -> "do", "n't").
3. Otherwise affixes are split off, repeatedly: a prefix (the first matching rule in list order: "(",
   '"', "$" ...) and a suffix (the longest: ")", ".", "'s", "km" after a digit ...), stopping as soon as
   what is left is a special case.
4. What is left is one token if it is a URL, else it is split at infixes (a hyphen between letters,
   "...", "/" between letters ...).
5. A last pass over the document merges token sequences that spell a special case containing affix
   characters (":", ")" -> ":)" when the emoticon was glued to other text).

The tables (character classes, rules, exceptions) are in `spacy_tables.py`. This file is the algorithm, plain:
`tokenizers/word_fast.py` memoises it per run of non-space characters (`CachedWordTokenizer`), and
`tokenizers/fast.py` the whole pipeline per chunk for a corpus (what `tokenize_corpus` runs); the tests check
that they all give the same tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import regex

from .rules import SPECIAL_TOKENS
from .spacy_tables import EXCEPTIONS, INFIXES, PREFIXES, SUFFIXES, URL_PATTERN

# Every character for which str.isspace() is true (what spaCy splits on); all are below U+3001.
_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_WS = "".join(f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" for c in _WHITESPACE)
# Whitespace runs that make tokens: two or more whitespace characters, or one that is not " ". (Written to
# start with a character class, which lets `re` scan fast.)
_WS_TOKEN = re.compile(f"([{_WS}](?:(?<! )[{_WS}]*|[{_WS}]+))")


def _split_runs(text: str) -> list[str]:
    """Step 1: the non-space chunks and the whitespace tokens of `text`, in order."""
    parts = _WS_TOKEN.split(text)  # [words, whitespace, words, whitespace, ..., words]
    runs = [" "] if parts[0][:1] == " " else []  # a single leading space is a token too
    for k, part in enumerate(parts):
        if k % 2 == 0:  # words separated by single spaces: str.split() splits on str.isspace(), as spaCy does
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
    quadratically on long chunks with many ":" and "@"."""
    slow = r"(?:\S+(?::\S*)?@)?"
    assert slow in URL_PATTERN
    return URL_PATTERN.replace(slow, r"(?:\S+@)?")


def forward_suffix_regex(suffixes: list[str] = SUFFIXES) -> re.Pattern:
    """spaCy's own suffix regex ('s1$|s2$|...', searched forward); the tests use it as the reference."""
    return re.compile("|".join(p + "$" for p in suffixes if p.strip()))


class WordTokenizer:
    """spaCy 3's English tokenizer as fastai uses it (`SpacyTokenizer`): the book's word tokenizer.

    `WordTokenizer()(text)` gives the token texts spaCy gives, whitespace tokens included ('\\n\\n ').

        >>> WordTokenizer()("(Don't) stop:) at 5pm.")
        ['(', 'Do', "n't", ')', 'stop', ':)', 'at', '5', 'pm', '.']

    `special_cases`: strings always kept as one token (default: fastai's 9 special tokens, as fastai adds them).
    This is the algorithm, plain; `tokenizers/word_fast.py` memoises it (`CachedWordTokenizer`).
    """

    def __init__(self, special_cases: Iterable[str] = SPECIAL_TOKENS):
        if isinstance(special_cases, str):
            raise TypeError("special_cases must be an iterable of strings, not a single string")
        self.rules: dict[str, tuple[str, ...]] = dict(EXCEPTIONS)
        for s in special_cases:
            if not isinstance(s, str) or not s or any(c.isspace() for c in s):
                raise ValueError(f"a special case must be a non-empty string without whitespace, got {s!r}")
            self.rules[s] = (s,)
        self._special = {k: list(v) for k, v in self.rules.items()}
        self._prefix = _compile_prefixes(PREFIXES).match
        self._suffix = _compile_suffixes(SUFFIXES).match
        self._infixes = regex.compile("|".join(p for p in INFIXES if p.strip())).finditer
        self._url = re.compile("(?u)" + _fast_url_pattern()).match  # `re`, as spaCy: its \w, \d and \S
        self._build_matcher()

    def __call__(self, text: str) -> list[str]:
        """Tokenize `text` as spaCy's English tokenizer: `WordTokenizer()("don't stop.")` -> ['do', "n't", 'stop', '.']."""
        if not isinstance(text, str):
            raise TypeError(f"WordTokenizer expects a str, got {type(text).__name__}")
        tokens = [tok for run in _split_runs(text) for tok in self.tokenize_run(run)]  # steps 1-4
        return self._apply_special_cases(text, tokens)  # step 5

    # --- steps 2-4: one run of non-space characters ----------------------------------------------------------
    def tokenize_run(self, run: str, specials: dict[str, list[str]] | None = None) -> list[str]:
        """Tokens of one run: the run itself if a special case (step 2), else its prefixes, its core (a special
        case, a URL, or split at infixes) and its suffixes (steps 3-4). `specials` default: this tokenizer's."""
        specials = self._special if specials is None else specials
        if run in specials:
            return list(specials[run])
        prefixes, core, suffixes = self._split_affixes(run, specials)
        return prefixes + self._tokenize_core(core, specials) + suffixes[::-1]

    def _find_prefix(self, s: str) -> int:
        """Length of the prefix at the start of `s` (0 if none): the first prefix rule that matches."""
        m = self._prefix(s)
        return m.end() if m else 0

    def _find_suffix(self, s: str) -> int:
        """Length of the suffix at the end of `s` (0 if none): the longest suffix rule that matches."""
        m = self._suffix(s)
        return m.end() - m.start() if m else 0

    def _split_affixes(self, s: str, specials: dict) -> tuple[list[str], str, list[str]]:
        """Step 3: strip prefixes and suffixes off `s` until nothing changes or the rest is a special case.
        Returns (prefixes, core, suffixes in the order found: outermost first)."""
        prefixes: list[str] = []
        suffixes: list[str] = []
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

    def _tokenize_core(self, core: str, specials: dict) -> list[str]:
        """Step 4: what is left after the affixes is a special case, one URL, or split at infixes."""
        if core in specials:
            return list(specials[core])
        if not core:
            return []
        if self._url(core):
            return [core]
        return self._split_infixes(core)

    def _split_infixes(self, core: str) -> list[str]:
        """`core` cut at every infix match (each infix its own token; one at the very start is not cut)."""
        tokens, start = [], 0
        for m in self._infixes(core):
            i, j = m.span()
            if i == 0:
                continue
            if i != start:
                tokens.append(core[start:i])
            if i != j:
                tokens.append(core[i:j])
            start = j
        if start < len(core):
            tokens.append(core[start:])
        return tokens

    # --- step 5: special cases that the affix rules split ----------------------------------------------------
    def _build_matcher(self) -> None:
        """spaCy puts every special case that contains an affix (or a space) into a phrase matcher, as the
        tokens the affix rules alone make of it ("(:" -> "(", ":"). We index these patterns by first token."""
        self._patterns: dict[str, list[tuple[str, ...]]] = {}
        for key in sorted(self.rules):
            if self._find_prefix(key) or self._find_suffix(key) or any(True for _ in self._infixes(key)) or " " in key:
                pattern = tuple(tok for run in _split_runs(key) for tok in self.tokenize_run(run, {}))
                self._patterns.setdefault(pattern[0], []).append(pattern)

    def _apply_special_cases(self, text: str, tokens: list[str]) -> list[str]:
        """spaCy's matcher pass: find every occurrence of every pattern, keep the longest (then earliest) of
        overlapping ones, and replace each kept one with no space inside by its special case's tokens."""
        n = len(tokens)
        matches = []
        for i, tok in enumerate(tokens):
            for pat in self._patterns.get(tok, ()):
                if i + len(pat) <= n and tuple(tokens[i:i + len(pat)]) == pat:
                    matches.append((i, i + len(pat)))
        if not matches:
            return tokens
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
    """The shared plain `WordTokenizer` with fastai's special tokens as special cases (made on first use)."""
    global _default
    if _default is None:
        _default = WordTokenizer()
    return _default


def word_tokenize(text: str) -> list[str]:
    """Word tokenization with the shared default `WordTokenizer` (fastai's special tokens as special cases)."""
    return default_word_tokenizer()(text)
