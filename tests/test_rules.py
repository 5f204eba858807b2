"""fastai's pre-rules, checked rule by rule against fastai 2.8's own output (tests/fixtures/tokenize_rules.jsonl),
and the cached default rules of tokenizers/word_fast.py against their plain composition."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awdlstm.tokenizers import rules
from awdlstm.tokenizers.rules import DEFAULT_RULES, SPECIAL_TOKENS, apply_rules
from awdlstm.tokenizers.word_fast import apply_default_rules
from conftest import FIXTURES

CASES = [json.loads(line) for line in (FIXTURES / "tokenize_rules.jsonl").open(encoding="utf-8")]


def test_special_tokens_in_fastai_order():
    assert SPECIAL_TOKENS == "xxunk xxpad xxbos xxeos xxfld xxrep xxwrep xxup xxmaj".split()


def test_default_rule_order():
    assert [r.__name__ for r in DEFAULT_RULES] == [
        "fix_html", "replace_rep", "replace_wrep", "spec_add_spaces", "rm_useless_spaces",
        "replace_all_caps", "replace_maj", "lowercase"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_each_rule_equals_fastai(case):
    text = case["text"]
    for (name, expected), rule in zip(case["after"], DEFAULT_RULES, strict=True):
        assert rule.__name__ == name
        text = rule(text)
        assert text == expected, name


def test_apply_rules_is_the_composition():
    for case in CASES:
        assert apply_rules(case["text"]) == case["after"][-1][1]
        assert apply_default_rules(case["text"]) == case["after"][-1][1]  # the cached path (fast.py) too


@pytest.mark.parametrize("fn, text, expected", [
    (rules.replace_rep, "cooool", "c xxrep 4 o l"),
    (rules.replace_wrep, "go go go go !", " xxwrep 4 go  !"),
    (rules.spec_add_spaces, "a/b#c\\d", "a / b # c \\ d"),
    (rules.rm_useless_spaces, "a   b\t\tc", "a b\t\tc"),
    (rules.replace_all_caps, "I AM SHOUTING", "i xxup am xxup shouting"),
    (rules.replace_maj, "My name is Bond", "xxmaj my name is xxmaj bond"),
    (rules.lowercase, "  Hi There ", "xxbos hi there"),
    (rules.fix_html, "Tom &amp; Jerry<br />&lt;3", "Tom && Jerry\n<3"),
    (rules.replace_space, "\n ", "\n\u2581"),
])
def test_docstring_examples(fn, text, expected):
    assert fn(text) == expected


def test_user_rules_replace_the_defaults():
    assert apply_rules("Hello World", [str.upper]) == "HELLO WORLD"
    assert apply_rules("Hello", []) == "Hello"


def test_non_str_is_rejected_with_a_clear_error():
    with pytest.raises(TypeError, match="expects a str"):
        apply_rules(b"bytes")


TRICKY = "aA Bb CC dD! (EE) x/y #z \\ go go go Go GO go... ooo!!! 🔥🔥🔥 &amp; <br /> \t\n\x1c\u3000\u00a0 ÉÉ"


def test_apply_rules_runs_each_rule_in_order():
    calls = []
    logged = [lambda t, r=r: (calls.append(r.__name__), r(t))[1] for r in DEFAULT_RULES]
    text = "Hello WORLD!!! go go go"
    assert apply_rules(text, logged) == apply_rules(text) == "xxbos xxmaj hello xxup world xxrep 3 ! xxwrep 3 go"
    assert calls == [r.__name__ for r in DEFAULT_RULES]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(TRICKY), max_size=60) | st.text(max_size=40))
def test_fast_default_rules_equal_the_rules_one_by_one(text):
    assert apply_default_rules(text) == apply_rules(text)


def test_fast_default_rules_on_the_fixture_texts_and_word_repeats():
    texts = [json.loads(line)["text"] for line in (FIXTURES / "tokenize.jsonl").open(encoding="utf-8")]
    texts += ["Go go go go now", "yes yes yes!", "no no nope", "la la la la la la", "aaa aaa aaa"]
    for text in texts:
        assert apply_default_rules(text) == apply_rules(text)
