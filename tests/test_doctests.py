"""The worked examples in the tokenizers' docstrings are true."""
import doctest

import pytest

from awdlstm import tokenizers
from awdlstm.tokenizers import corpus, rules, vocab, word


@pytest.mark.parametrize("module", [tokenizers, rules, word, vocab, corpus], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, raise_on_error=False, verbose=False)
    assert result.attempted > 0 and result.failed == 0
