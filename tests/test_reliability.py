"""Issue #16 against the real scripts (in-process, through their error guard, as test_bad_inputs.py): a damaged
tokenized-corpus cache entry is named and rebuilt, CSVs with a byte-order mark are read, blank or missing labels
are refused naming the file and line, every JSON a later stage reads is covered by a checksum, and a validation
class without training documents is explained."""
import csv
import json
import shutil

import numpy as np
import pytest
from run_scripts import SAMPLE, TINY, main

from tokenizers.corpus import TokenizedCorpus, tokenize_corpus

pytestmark = pytest.mark.usefixtures("no_plots")

LM = [*TINY, "--lm-docs", "16", "--frozen-epochs", "0", "--epochs", "0", "--n-samples", "0"]


def fails(script: str, *args, capsys, needles=()) -> str:
    """Run `script`; assert exit status 1 and one `script.py: error: ...` line containing every needle."""
    code, err = main(script, *args, capsys=capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"{script}.py: error: "), (code, err)
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def rows(path=SAMPLE) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_csv(path, rows, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def same_corpus(a: TokenizedCorpus, b: TokenizedCorpus) -> bool:
    return a.types == b.types and np.array_equal(a.ids, b.ids) and np.array_equal(a.offsets, b.offsets)


# ---------------------------------------------------------------- 1. the tokenized-corpus cache

def flip(data: bytes, i: int) -> bytes:
    b = bytearray(data)
    b[i] ^= 0xFF
    return bytes(b)


def test_a_damaged_cache_entry_is_named_and_rebuilt(tmp_path, capsys):
    cache = tmp_path / "cache"
    args = [*LM, "--csv", SAMPLE, "--cache-dir", cache]
    assert main("finetune_lm", *args, "--run-dir", tmp_path / "r0", capsys=capsys) == (0, "")
    n_tokens = json.loads((tmp_path / "r0" / "config.json").read_text())["results"]["n_tokens"]
    [entry] = cache.glob("tokens-*.npz")
    good_bytes, good = entry.read_bytes(), TokenizedCorpus.load(entry)
    ids_at = good_bytes.find(good.ids.tobytes()[:64])
    types_at = good_bytes.find("".join(good.types[:20]).encode())
    assert ids_at > 0 and types_at > 0
    other = tokenize_corpus(["another corpus", "of two texts"], n_workers=1, cache_dir=tmp_path / "other")
    [other_entry] = (tmp_path / "other").glob("tokens-*.npz")
    damaged = {"truncated": good_bytes[: len(good_bytes) // 2], "zero bytes": b"",
               "a byte flipped in the token ids": flip(good_bytes, ids_at + 1001),
               "a byte flipped in the token strings": flip(good_bytes, types_at + 7),
               "another corpus's entry": other_entry.read_bytes()}
    for i, (kind, data) in enumerate(damaged.items()):
        entry.write_bytes(data)
        code, err = main("finetune_lm", *args, "--run-dir", tmp_path / f"r{i + 1}", capsys=capsys)
        lines = err.strip().splitlines()
        assert code == 0 and len(lines) == 1, (kind, code, err)
        assert lines[0].startswith(f"warning: {entry}: truncated or corrupted tokenized-corpus file ("), (kind, err)
        assert lines[0].endswith("; rebuilding this cache entry"), (kind, err)
        assert same_corpus(TokenizedCorpus.load(entry), good), kind  # rebuilt, and what was trained on is right
        assert json.loads((tmp_path / f"r{i + 1}" / "config.json").read_text())["results"]["n_tokens"] == n_tokens
    assert "key inside is not the one in its name" in lines[0]
    assert main("finetune_lm", *args, "--run-dir", tmp_path / "again", capsys=capsys) == (0, "")  # repaired: silent
    assert other.types[:3] == ["xxbos", "another", "corpus"]


def test_every_flipped_byte_of_a_cache_file_is_caught_or_harmless(tmp_path):
    """The `.npz` members carry CRC-32s, checked as they are read: a byte changed anywhere either makes the
    load fail with an error naming the file or (zip fields that hold no data, such as a time stamp) changes
    nothing that is read."""
    texts = [r["text"] for r in rows()[:40]]
    corpus = tokenize_corpus(texts, n_workers=1)
    path = tmp_path / "c.npz"
    corpus.save(path, "k")
    data = path.read_bytes()
    caught = 0
    for i in range(0, len(data), 13):
        path.write_bytes(flip(data, i))
        try:
            back = TokenizedCorpus.load(path, "k", len(texts))
        except ValueError as e:
            assert str(e).startswith(f"{path}: truncated or corrupted tokenized-corpus file ("), str(e)
            caught += 1
        else:
            assert same_corpus(back, corpus), i
    assert caught > 0.9 * len(range(0, len(data), 13))
