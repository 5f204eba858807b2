"""Text -> tokens -> ids: the first stage of ULMFiT (chapter 10, "Tokenization" and "Numericalization").

    >>> from awdlstm.tokenizers import tokenize, Vocab
    >>> tokens = tokenize("This movie was GREAT!")
    >>> tokens
    ['xxbos', 'xxmaj', 'this', 'movie', 'was', 'xxup', 'great', '!']
    >>> Vocab.build([tokens], min_freq=1).encode(tokens)
    [2, 8, 9, 10, 11, 7, 12, 13]

`tokenize` is the plain pipeline a reader steps into: the rules in order (rules.py), spaCy's algorithm
(word.py), `replace_space`. `tokenize_corpus` gives the same tokens for many texts through the caches of fast.py.

Depends on numpy and regex only; nothing here imports torch or the other packages of the project.
"""
from .char import CharTokenizer
from .corpus import TokenizedCorpus, numericalize_all, tokenize, tokenize_all, tokenize_corpus
from .rules import DEFAULT_RULES, SPECIAL_TOKENS, apply_rules
from .subword import SubwordTokenizer
from .vocab import Vocab
from .word import WordTokenizer, word_tokenize

__all__ = [
    "CharTokenizer", "DEFAULT_RULES", "SPECIAL_TOKENS", "SubwordTokenizer", "TokenizedCorpus", "Vocab",
    "WordTokenizer", "apply_rules", "numericalize_all", "tokenize", "tokenize_all", "tokenize_corpus",
    "word_tokenize",
]
