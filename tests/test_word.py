"""Tests for tokenizers/word.py: spaCy 3.8's English tokenizer (as fastai uses it), rewritten without spaCy,
and for its memoised twin in tokenizers/word_fast.py (CachedWordTokenizer), which must give the same tokens.

Expected values come from fastai 2.8.12 + spaCy 3.8.18 (the fixtures, and CASES below, recorded by running
`fastai.text.core.WordTokenizer()` on each string).
"""

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awdlstm.tokenizers.rules import SPECIAL_TOKENS, apply_rules, replace_space
from awdlstm.tokenizers.spacy_tables import EXCEPTIONS, PREFIXES, SUFFIXES
from awdlstm.tokenizers.word import (
    _WHITESPACE,
    WordTokenizer,
    _split_runs,
    forward_suffix_regex,
    word_tokenize,
)
from awdlstm.tokenizers.word_fast import CachedWordTokenizer, cached_word_tokenizer

# (text, tokens of fastai's WordTokenizer: spacy.blank("en") + the 9 special tokens), spaCy 3.8.18.
CASES = [
    ('a  b\n\nc \n d',
     ['a', ' ', 'b', '\n\n', 'c', '\n ', 'd']),
    (' a',
     [' ', 'a']),
    ('  a',
     ['  ', 'a']),
    ('a ',
     ['a']),
    ('a  ',
     ['a', ' ']),
    ('\n',
     ['\n']),
    (' ',
     [' ']),
    ('\t x\r\ny',
     ['\t ', 'x', '\r\n', 'y']),
    ('a\u3000b\xa0c\x85d',
     ['a', '\u3000', 'b', '\xa0', 'c', '\x85', 'd']),
    ("don't can't won't ain't i'm I'm DON'T Don't dont cant",
     ['do', "n't", 'ca', "n't", 'wo', "n't", 'ai', "n't", 'i', "'m", 'I', "'m", "DON'T", 'Do', "n't", 'do', 'nt', 'ca', 'nt']),
    ('don’t i’m it’s',
     ['do', 'n’t', 'i', '’m', 'it', '’s']),
    ('ill its well were hell shed whore',
     ['ill', 'its', 'well', 'were', 'hell', 'shed', 'whore']),
    ('a.m. p.m. e.g. i.e. vs. u.s. U.S. mr. Mr. ph.d. Ph.D.',
     ['a.m.', 'p.m.', 'e.g.', 'i.e.', 'vs.', 'u.s', '.', 'U.S.', 'mr', '.', 'Mr.', 'ph.d', '.', 'Ph.D.']),
    ('5pm 5a.m. 12pm 13pm 3p.m.',
     ['5', 'pm', '5', 'a.m.', '12', 'pm', '13pm', '3', 'p.m.']),
    ("y'all gonna gotta cannot let's c'mon how'd'y LET'S",
     ["y'", 'all', 'gon', 'na', 'got', 'ta', 'can', 'not', 'let', "'s", "c'm", 'on', 'how', "'d", "'y", 'LET', "'S"]),
    ("'em 'cause 'bout ol' doin' goin'",
     ["'em", "'cause", "'bout", "ol'", "doin'", "goin'"]),
    ('hi…… …… ...hi hi... hi.. x.y a.B',
     ['hi', '……', '…', '…', '...', 'hi', 'hi', '...', 'hi', '..', 'x.y', 'a.', 'B']),
    ('(http://www.fast.ai/index.html). www.fast.ai/INDEX example.com/path email@example.com x.com lower.Upper',
     ['(', 'http://www.fast.ai/index.html', ')', '.', 'www.fast.ai/INDEX', 'example.com/path', 'email@example.com', 'x.com', 'lower', '.', 'Upper']),
    ('10km 5mg 3$ $5.00 50% US$5 20°C. (°C.) 5+ km² 3m/s',
     ['10', 'km', '5', 'mg', '3', '$', '$', '5.00', '50', '%', 'US$', '5', '20', '°', 'C', '.', '(', '°', 'C', '.', ')', '5', '+', 'km²', '3', 'm/s']),
    ('e-mail 5-high high-5 2020-01-01 3*4 a+b hello/world and/or w/o',
     ['e', '-', 'mail', '5', '-', 'high', 'high-5', '2020', '-', '01', '-', '01', '3', '*', '4', 'a+b', 'hello', '/', 'world', 'and/or', 'w/o']),
    ("#hashtag @user Hello,world It's 10:30. a:b x<y x=y",
     ['#', 'hashtag', '@user', 'Hello', ',', 'world', 'It', "'s", '10:30', '.', 'a', ':', 'b', 'x', '<', 'y', 'x', '=', 'y']),
    (':) :-) (: :( <3 </3 ^_^ o.O ¯\\(ツ)/¯ (╯°□°）╯︵┻━┻',
     [':)', ':-)', '(:', ':(', '<3', '</3', '^_^', 'o.O', '¯\\(ツ)/¯', '(╯°□°）╯︵┻━┻']),
    ('x:) x-a. hi(: ok;) (-: 8) x8-) :-)) b.',
     ['x', ':)', 'x', '-', 'a.', 'hi', '(:', 'ok', ';)', '(-:', '8)', 'x8-', ')', ':-))', 'b.']),
    ('«quoted» „this“ ‚that‘ 「日本」 《书》 〈a〉 ⟦b⟧ 〈c〉',
     ['«', 'quoted', '»', '„', 'this', '“', '‚', 'that', '‘', '「', '日本', '」', '《', '书', '》', '〈', 'a', '〉', '⟦', 'b', '⟧', '〈', 'c', '〉']),
    ('C++ \'\' <space> \\")',
     ['C++', "''", '<space>', '\\")']),
    ('😀😀 hi😀 ✓done ★star ©2020 ™',
     ['😀', '😀', 'hi', '😀', '✓', 'done', '★', 'star', '©', '2020', '™']),
    ('Привет, мир! Ünïcödé façade naïve',
     ['Привет', ',', 'мир', '!', 'Ünïcödé', 'façade', 'naïve']),
    ('xxbos xxmaj xxup xxrep 3 w xxwrep xxunk xxpad xxeos xxfld',
     ['xxbos', 'xxmaj', 'xxup', 'xxrep', '3', 'w', 'xxwrep', 'xxunk', 'xxpad', 'xxeos', 'xxfld']),
    ("(xxbos) xxmaj's",
     ['(', 'xxbos', ')', 'xxmaj', "'s"]),
    ('1.2.3.4 127.0.0.1 192.168.0.1 8.8.8.8:53/dns',
     ['1.2.3.4', '127.0.0.1', '192.168.0.1', '8.8.8.8:53/dns']),
]


def _load_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_fixture_pipeline_equals_fastai(fixtures_dir):
    """tokenize.jsonl: all 383 texts, rules + word tokenizer + replace_space equal fastai's tokenize1."""
    lines = _load_jsonl(fixtures_dir / "tokenize.jsonl")
    assert len(lines) == 383
    bad = []
    for line in lines:
        got = [replace_space(t) for t in word_tokenize(apply_rules(line["text"]))]
        if got != line["tokens"]:
            first = next((i for i, (a, b) in enumerate(zip(got, line["tokens"], strict=False)) if a != b), min(len(got), len(line["tokens"])))
            bad.append(f"{line['id']}: token {first}: got {got[first:first + 3]} want {line['tokens'][first:first + 3]}")
    assert not bad, "\n".join(bad)


def test_fixture_post_rules_strings(fixtures_dir):
    """tokenize_rules.jsonl gives the string spaCy receives (after `lowercase`) for 38 edge cases."""
    expected = {line["id"]: line["tokens"] for line in _load_jsonl(fixtures_dir / "tokenize.jsonl")}
    rules_lines = _load_jsonl(fixtures_dir / "tokenize_rules.jsonl")
    assert len(rules_lines) == 38
    for line in rules_lines:
        name, after = line["after"][-1]
        assert name == "lowercase"
        assert [replace_space(t) for t in word_tokenize(after)] == expected[line["id"]], line["id"]


@pytest.mark.parametrize("text,tokens", CASES)
def test_cases_equal_spacy(text, tokens):
    assert WordTokenizer()(text) == tokens
    assert word_tokenize(text) == tokens  # the shared instance agrees
    assert CachedWordTokenizer()(text) == tokens  # the memoised one, cold
    assert cached_word_tokenizer()(text) == tokens  # and warm (shared)


def test_tables():
    assert len(EXCEPTIONS) == 1347  # spacy.blank("en").tokenizer.rules
    assert EXCEPTIONS["don't"] == ("do", "n't") and EXCEPTIONS["don’t"] == ("do", "n’t")
    assert EXCEPTIONS["can't"] == ("ca", "n't") and EXCEPTIONS["5p.m."] == ("5", "p.m.")
    assert EXCEPTIONS["°C."] == ("°", "C", ".") and EXCEPTIONS[":)"] == (":)",)
    for key in ["ill", "its", "well", "were", "Shed", "whore"]:  # spaCy's _exclude
        assert key not in EXCEPTIONS
    for key, pieces in EXCEPTIONS.items():
        assert "".join(pieces) == key
    assert len(PREFIXES) == 120 and len(SUFFIXES) == 83


def test_whitespace_is_str_isspace():
    assert _WHITESPACE == "".join(c for c in map(chr, range(0x110000)) if c.isspace())


def _tricky_strings(n, seed=0):
    rng = random.Random(seed)
    alphabet = list("aAbsStTxUC09 .,!?;:'\"`’‘“”()[]{}<>-–—~/\\*+^=%$£€#@&_|…°²") + [
        "……", "...", "'s", "’S", "km", "US$", "C$", "m/s", "°C", "😀", "✓", "中", "д", "\n", "  ", "\xa0"]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(n)]


def test_reversed_suffix_regex_equals_spacy_forward_search():
    """Our suffix regex (reversed, one try at the end) finds the same suffix as spaCy's forward search."""
    plain, cached = WordTokenizer(), CachedWordTokenizer()  # the cached one skips the regex for a-z words
    forward = forward_suffix_regex().search
    chunks = [s for s in _tricky_strings(20000) if s.split() == [s]]  # chunks never hold whitespace
    for s in chunks + ["hi……", "x………", "a..", "10km²", "5US$", "it's", "e.g.", "its", "km", "5km", "xs"]:
        m = forward(s)
        assert plain._find_suffix(s) == cached._find_suffix(s) == (m.end() - m.start() if m else 0), s
        assert plain._find_prefix(s) == cached._find_prefix(s), s


def test_split_runs():
    assert _split_runs("a  b\n\nc \n d") == ["a", " ", "b", "\n\n", "c", "\n ", "d"]
    assert _split_runs(" a b ") == [" ", "a", "b"]
    assert _split_runs("") == [] and _split_runs("  ") == ["  "] and _split_runs(" ") == [" "]


def test_matcher_pass_merges_split_special_cases():
    tok = WordTokenizer()
    assert tok("x-a.") == ["x", "-", "a."]  # infixes split "a." off, the special-case pass merges it back
    assert tok("x:)") == ["x", ":)"]
    assert tok("x-a .") == ["x", "-", "a", "."]  # separated by a space: not a special case


def test_custom_special_cases_and_errors():
    tok = WordTokenizer(special_cases=["zz-top"])
    assert tok("zz-top rocks") == ["zz-top", "rocks"]
    assert WordTokenizer(special_cases=[])("xxbos") == ["xxbos"]
    assert WordTokenizer()("(xxbos)") == ["(", "xxbos", ")"]
    with pytest.raises(TypeError, match="str"):
        WordTokenizer()(b"bytes")
    with pytest.raises(TypeError, match="special_cases"):
        WordTokenizer(special_cases="xxbos")
    with pytest.raises(ValueError, match="special case"):
        WordTokenizer(special_cases=["a b"])
    with pytest.raises(ValueError, match="max_cache_size"):
        CachedWordTokenizer(max_cache_size=-1)
    with pytest.raises(TypeError, match="str"):
        CachedWordTokenizer()(b"bytes")
    assert SPECIAL_TOKENS[0] == "xxunk"


def test_robust_inputs():
    tok = WordTokenizer()
    assert tok("") == [] and CachedWordTokenizer()("") == []
    assert tok("   ") == ["   "] and tok("\n\t ") == ["\n\t "]
    assert tok("\x00\x01a\x7f") == ["\x00\x01a\x7f"]
    assert tok("a\ud800b c") == ["a\ud800b", "c"]  # a lone surrogate (spaCy itself raises here)
    assert tok("日本語テキスト, and Ελληνικά!") == ["日本語テキスト", ",", "and", "Ελληνικά", "!"]
    assert tok("👍🏽👨\u200d👩\u200d👧") == ["👍", "🏽", "👨", "\u200d", "👩", "\u200d", "👧"]
    assert len(tok("(" * 3000 + "x" + ")" * 3000)) == 6001


@pytest.mark.parametrize("size, cached", [(500_000, False), (5_000_000, True)],
                         ids=["plain-500KB", "cached-5MB"])  # the plain one is linear too, but slower
def test_five_megabyte_document(size, cached):
    text = ("Don't stop (the movie) at 5pm... e-mail me@x.com!\n\n " * 100_000)[:size]
    tokens = (cached_word_tokenizer() if cached else word_tokenize)(text)
    assert "".join(tokens).replace(" ", "") == text.replace(" ", "")
    assert tokens[:19] == ["Do", "n't", "stop", "(", "the", "movie", ")", "at", "5", "pm", "...", "e", "-", "mail",
                           "me@x.com", "!", "\n\n ", "Do", "n't"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_nothing_dropped(text):
    """Every non-space character of the input is in the tokens, in order; no token is empty."""
    tokens = word_tokenize(text)
    assert all(tokens)
    strip = {ord(c): None for c in _WHITESPACE}
    assert "".join(tokens).translate(strip) == text.translate(strip)


def test_fast_url_pattern_accepts_what_spacy_accepts():
    import re

    from awdlstm.tokenizers.spacy_tables import URL_PATTERN
    from awdlstm.tokenizers.word import _fast_url_pattern

    spacy_url, ours = re.compile("(?u)" + URL_PATTERN).match, re.compile("(?u)" + _fast_url_pattern()).match
    rng = random.Random(2)
    pieces = list("ab.:@/-_1") + ["http://", "www.", ".com", "user:pw@", "mailto:", "192.168.", "8.8.8.8", ":80", "#", "é"]
    strings = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 10))) for _ in range(20000)]
    assert sum(bool(ours(s)) for s in strings) > 100
    for s in strings:
        assert bool(ours(s)) == bool(spacy_url(s)), s
    assert len(WordTokenizer()("a:b@" * 5000)) == 10001  # fast; spaCy's own pattern backtracks quadratically
