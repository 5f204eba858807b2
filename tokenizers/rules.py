"""fastai's tokenizer rules: the special tokens and the pre-rules applied to the raw string.

Chapter 10, "Word Tokenization with fastai": before the word tokenizer sees a text, fastai rewrites the whole
string with a list of rules, in this order (``DEFAULT_RULES``)::

    fix_html -> replace_rep -> replace_wrep -> spec_add_spaces -> rm_useless_spaces
             -> replace_all_caps -> replace_maj -> lowercase

and after tokenizing it applies one post-rule to every token, ``replace_space``. The rules insert the special
tokens below (``xxbos`` at the start, ``xxmaj`` before a capitalised word, ...), so that the model still knows
what lowercasing threw away.

The patterns use the standard library's ``re`` on purpose: fastai does, and ``re``'s ``\\s`` and ``\\w`` are not
the same character sets as the ``regex`` module's, so using ``re`` keeps our output equal to fastai's.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

UNK, PAD, BOS, EOS, FLD = "xxunk", "xxpad", "xxbos", "xxeos", "xxfld"
TK_REP, TK_WREP, TK_UP, TK_MAJ = "xxrep", "xxwrep", "xxup", "xxmaj"

# The order matters: Numericalize puts these first, so xxunk is id 0 and xxpad id 1.
SPECIAL_TOKENS: list[str] = [UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ]

Rule = Callable[[str], str]

# fix_html replaces these (plain substring replacements, in this order) before html.unescape. Note that the
# names are replaced without their '&': '&amp;' becomes '&&' and '&#39;' becomes "&'", exactly as fastai.
_HTML_FIXES = [
    ("#39;", "'"), ("amp;", "&"), ("#146;", "'"), ("nbsp;", " "), ("#36;", "$"), ("\\n", "\n"),
    ("quot;", "'"), ("<br />", "\n"), ('\\"', '"'), ("<unk>", UNK), (" @.@ ", "."), (" @-@ ", "-"),
    ("...", " …"),
]


def fix_html(text: str) -> str:
    """Clean up HTML left in scraped text: `fix_html("a<br />b &lt;3")` -> "a\\nb <3"."""
    for old, new in _HTML_FIXES:
        text = text.replace(old, new)
    return html.unescape(text)


_re_rep = re.compile(r"(\S)(\1{2,})")


def replace_rep(text: str) -> str:
    """Character repetition: `replace_rep("cooool")` -> "c xxrep 4 o l" (3 or more of any non-space char)."""

    def _sub(m: re.Match) -> str:
        char, rest = m.groups()
        return f" {TK_REP} {len(rest) + 1} {char} "

    return _re_rep.sub(_sub, text)


_re_wrep = re.compile(r"(?:\s|^)(\w+)\s+((?:\1\s+)+)\1(\s|\W|$)")


def replace_wrep(text: str) -> str:
    """Word repetition: `replace_wrep("go go go go !")` -> " xxwrep 4 go  !" (3 or more, case-sensitive)."""

    def _sub(m: re.Match) -> str:
        word, middle, end = m.groups()
        return f" {TK_WREP} {len(middle.split()) + 2} {word} {end}"

    return _re_wrep.sub(_sub, text)


_re_spec = re.compile(r"([/#\\])")


def spec_add_spaces(text: str) -> str:
    """Put spaces around `/`, `#` and `\\`: `spec_add_spaces("a/b")` -> "a / b"."""
    return _re_spec.sub(r" \1 ", text)


_re_space = re.compile(" {2,}")


def rm_useless_spaces(text: str) -> str:
    """Collapse runs of ASCII spaces (only spaces: tabs and newlines stay): "a   b" -> "a b"."""
    return _re_space.sub(" ", text)


_re_all_caps = re.compile(r"(\s|^)([A-Z]+[^a-z\s]*)(?=(\s|$))")


def replace_all_caps(text: str) -> str:
    """Words in capitals: `replace_all_caps("I AM SHOUTING")` -> "i xxup am xxup shouting".

    A single capital letter alone ("I", "A") is lowercased without a marker.
    """

    def _sub(m: re.Match) -> str:
        space, word = m.group(1), m.group(2)
        return f"{space}{TK_UP + ' ' if len(word) > 1 else ''}{word.lower()}"

    return _re_all_caps.sub(_sub, text)


_re_maj = re.compile(r"(\s|^)([A-Z][^A-Z\s]*)(?=(\s|$))")


def replace_maj(text: str) -> str:
    """Capitalised words: `replace_maj("My name is Bond")` -> "xxmaj my name is xxmaj bond"."""

    def _sub(m: re.Match) -> str:
        space, word = m.group(1), m.group(2)
        return f"{space}{TK_MAJ + ' ' if len(word) > 1 else ''}{word.lower()}"

    return _re_maj.sub(_sub, text)


def lowercase(text: str, add_bos: bool = True, add_eos: bool = False) -> str:
    """Lowercase and strip, marking the start of the text: `lowercase("Hi ")` -> "xxbos hi"."""
    return (f"{BOS} " if add_bos else "") + text.lower().strip() + (f" {EOS}" if add_eos else "")


def replace_space(token: str) -> str:
    """Post-rule on each token: a space inside a token becomes '▁', so tokens can be joined by spaces."""
    return token.replace(" ", "\u2581")


DEFAULT_RULES: list[Rule] = [
    fix_html, replace_rep, replace_wrep, spec_add_spaces, rm_useless_spaces,
    replace_all_caps, replace_maj, lowercase,
]


def apply_rules(text: str, rules: Sequence[Rule] | None = None) -> str:
    """Apply the pre-rules in order to the whole string (fastai's `compose(*rules)(text)`); default `DEFAULT_RULES`.

        >>> apply_rules("This movie was GREAT!!! go go go")
        'xxbos xxmaj this movie was xxup great xxrep 3 ! xxwrep 3 go'

    This is the plain composition, one rule after the other. `tokenizers/word_fast.py` gives the same string
    faster (`apply_default_rules`: the rules cached per chunk); `tokenize_corpus` chooses it, and the tests
    check that both agree.
    """
    if not isinstance(text, str):
        raise TypeError(f"apply_rules expects a str, got {type(text).__name__}")
    for rule in DEFAULT_RULES if rules is None else rules:
        text = rule(text)
    return text
