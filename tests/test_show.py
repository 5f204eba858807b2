"""show_batch prints LM and classifier batches as text, like dls.show_batch in the chapter."""
import io

import pytest
import torch

from awdlstm.data import ClasLoader, LabelVocab, LMLoader, show_batch
from awdlstm.data.show import decode, format_table

ITOS = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj",
        "the", "movie", "was", "great", "bad", ".", "a", "film"]


class FakeVocab:  # anything with .itos
    itos = ITOS


def test_lm_batch_text_and_shifted_text():
    docs = [[2, 8, 9, 10, 11, 12, 14], [2, 15, 16, 11, 13, 14]]
    x, y = next(iter(LMLoader(docs, bs=2, seq_len=4, shuffle=False)))
    f = io.StringIO()
    out = show_batch((x, y), FakeVocab(), width=100, file=f)
    assert f.getvalue() == out + "\n"
    lines = out.splitlines()
    assert lines[0].split("|")[1].strip() == "text" and lines[0].split("|")[2].strip() == "text_"
    assert lines[2].split("|")[1].strip() == "xxbos xxmaj the movie"
    assert lines[2].split("|")[2].strip() == "xxmaj the movie was"
    assert lines[3].split("|")[1].strip() == ". xxbos a film"  # row 1 starts at stream position bl = 6


def test_clas_batch_text_without_padding_and_label():
    docs = [[2, 9, 10, 11, 12, 14], [2, 16, 13]]
    dl = ClasLoader(docs, ["pos", "neg"], bs=2, seq_len=2)
    x, y = next(iter(dl))
    assert (x == 1).sum() == 3
    out = show_batch((x, y), ITOS, label_vocab=dl.label_vocab, width=100, file=io.StringIO())
    rows = [[c.strip() for c in line.split("|")] for line in out.splitlines()[2:]]
    assert rows == [["0", "xxbos the movie was great .", "pos"], ["1", "xxbos film bad", "neg"]]
    plain = show_batch((x, y), ITOS, width=100, file=io.StringIO())
    assert plain.splitlines()[2].endswith("| 1")
    assert "xxbos film" in show_batch((x, None), ITOS, max_n=5, file=io.StringIO())


def test_decode_wrap_and_errors():
    assert decode(torch.tensor([2, 9, 1, 10]), ITOS, pad_idx=1) == "xxbos the movie"
    assert decode([2, 9, 10, 99], ITOS, trunc_at=2) == "xxbos the"
    assert decode([99], ITOS) == "<99?>"
    table = format_table(["text"], [["word " * 30]], width=40)
    assert len(table.splitlines()) > 3 and all(len(line) <= 40 for line in table.splitlines())
    with pytest.raises(TypeError, match="itos"):
        show_batch((torch.zeros(1, 2, dtype=torch.long), None), 42)
    assert LabelVocab(["neg", "pos"]).itos == ["neg", "pos"]
