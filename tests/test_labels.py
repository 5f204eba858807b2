"""Labels as a person types them (data/labels.py, issue #33): spaces around a label are stripped (one warning),
labels that differ only by case are refused, and so is a class with too few documents to learn or to validate
and a CSV too small for its split, each error naming the file, the counts and the flag to change; the label
set with its counts is printed before training and lands in log.txt."""
import csv
import doctest

import numpy as np
import pytest
from run_scripts import SAMPLE, TINY, fails, main

from awdlstm.data import labels as L
from awdlstm.data import read_csv, read_folder
from awdlstm.data.splits import random_split

pytestmark = pytest.mark.usefixtures("no_plots")


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    d = tmp_path_factory.mktemp("labels")
    assert main("finetune_lm", *TINY, "--csv", SAMPLE, "--cache-dir", d / "cache", "--lm-docs", "16", "--epochs", "1",
                "--n-samples", "0", "--run-dir", d / "lm")[0] == 0
    return d


def clas(lm, tmp_path, *more):
    return [*TINY, "--encoder", lm / "lm", "--cache-dir", lm / "cache", "--epochs", "1,0,0,0", "--train-docs", "0",
            "--valid-docs", "0", "--run-dir", tmp_path / "clas", *more]


def write(path, labels, valid=None):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"] + (["v"] if valid else []))
        for i, lab in enumerate(labels):
            w.writerow([f"a {'good' if 'pos' in lab.lower() else 'bad'} film, number {i}", lab]
                       + ([valid[i]] if valid else []))
    return path


def test_the_worked_examples():
    result = doctest.testmod(L, raise_on_error=False, verbose=False)
    assert result.attempted >= 4 and result.failed == 0


def test_labels_typed_with_spaces_are_one_class(lm, tmp_path, capsys):
    labels = ["pos", "neg", " pos", "neg ", "pos ", " neg "] * 5
    path = write(tmp_path / "spaces.csv", labels)
    code, err = main("train_classifier", *clas(lm, tmp_path, "--csv", path), capsys=capsys)
    assert code == 0, err
    assert err.strip().splitlines() == [f"warning: {path}: 20 labels had spaces around them (' neg ' -> 'neg', "
                                        "'neg ' -> 'neg', ' pos' -> 'pos' ...); stripped: each is one class with "
                                        "the label without them"]
    assert (tmp_path / "clas" / "labels.json").read_text().count('"labels": ["neg", "pos"]') == 1
    log = (tmp_path / "clas" / "log.txt").read_text()
    table = log[log.index("label  train  valid"):].splitlines()[:4]  # before training: the classes and their counts
    assert [r.split()[0] for r in table] == ["label", "neg", "pos", "total"]
    assert [int(r.split()[1]) + int(r.split()[2]) for r in table[1:]] == [15, 15, 30]
    assert log.index("label  train  valid") < log.index("train_loss")
    assert read_csv(path).labels == [o.strip() for o in labels]


def test_a_class_folder_named_with_spaces_is_its_label(tmp_path, capsys):
    for name in ("pos ", " neg"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.txt").write_text("text")
    texts = read_folder(tmp_path)
    assert sorted(texts.labels) == ["neg", "pos"]
    assert capsys.readouterr().err == (f"warning: {tmp_path}: 2 labels had spaces around them (' neg' -> 'neg', "
                                       "'pos ' -> 'pos'); stripped: each is one class with the label without them\n")


def test_labels_that_differ_only_by_case_are_refused(lm, tmp_path, capsys):
    path = write(tmp_path / "case.csv", ["pos", "neg"] * 10 + ["Pos", "NEG", "Neg"])
    fails("train_classifier", *clas(lm, tmp_path, "--csv", path), capsys=capsys,
          needles=[f"--csv {path}: labels that differ only by case: 'NEG' (1 document) and 'Neg' (1 document) and "
                   "'neg' (10 documents); 'Pos' (1 document) and 'pos' (10 documents); a classifier would learn them "
                   "as different classes: write each class one way"])
    assert not (tmp_path / "clas").exists()


def test_a_class_too_small_to_learn_or_to_validate_is_refused(lm, tmp_path, capsys):
    # 'meh' has 3 documents, all for training (the validation column): too few to learn, none to validate
    labels = ["pos", "neg"] * 10 + ["meh"] * 3
    path = write(tmp_path / "small.csv", labels, ["1" if i % 5 == 0 else "" for i in range(20)] + ["", "", ""])
    fails("train_classifier", *clas(lm, tmp_path, "--csv", path, "--valid-col", "v"), capsys=capsys,
          needles=[f"--csv {path}: too few documents to learn or to validate class 'meh': 3 training and 0 "
                   f"validation documents, e.g. {path}:22, {path}:23, {path}:24. Every class needs at least "
                   f"{L.MIN_TRAIN} training and {L.MIN_VALID} validation document",
                   "change which rows validate in the --valid-col column", "(a typo'd label?)"])
    # a class only the validation split has, with a random split: the flags that change it are named
    labels = ["pos", "neg"] * 20 + ["neutral"]
    path = write(tmp_path / "rare.csv", labels)
    msg = fails("train_classifier", *clas(lm, tmp_path, "--csv", path, "--train-docs", "30"), capsys=capsys,
                needles=[f"--csv {path}: too few documents to learn or to validate class 'neutral': ",
                         "--valid-pct (now 0.2)", "--train-docs 30 --valid-docs 0 now (0: all)"])
    assert "'pos'" not in msg and "'neg'" not in msg
    assert not (tmp_path / "clas").exists()
    # the minimums met exactly: it trains
    labels = ["pos"] * (L.MIN_TRAIN + L.MIN_VALID) + ["neg"] * (L.MIN_TRAIN + L.MIN_VALID)
    valid = (["1"] * L.MIN_VALID + [""] * L.MIN_TRAIN) * 2
    path = write(tmp_path / "just.csv", labels, valid)
    assert main("train_classifier", *clas(lm, tmp_path, "--csv", path, "--valid-col", "v"), capsys=capsys) == (0, "")


def test_a_csv_too_small_for_its_split(lm, tmp_path, capsys):
    path = write(tmp_path / "three.csv", ["pos", "neg", "pos"])
    fails("train_classifier", *clas(lm, tmp_path, "--csv", path), capsys=capsys,
          needles=[f"--csv {path}: 3 documents, too few for a classifier of 2 labels with --valid-pct 0.2: it needs "
                   f"at least {L.needed_rows(2, 0.2)} (each label {L.MIN_TRAIN} training and {L.MIN_VALID} "
                   "validation document); add documents, or change the split: --valid-pct (now 0.2), or mark the "
                   "validation rows of a CSV with --valid-col"])
    path = write(tmp_path / "twenty.csv", ["pos", "neg"] * 10)  # enough rows, but --valid-pct 0.05 keeps 1
    fails("train_classifier", *clas(lm, tmp_path, "--csv", path, "--valid-pct", "0.05"), capsys=capsys,
          needles=[f"--csv {path}: 20 documents, too few for a classifier of 2 labels with --valid-pct 0.05: it "
                   "needs at least 40"])
    path = write(tmp_path / "one.csv", ["pos"])
    fails("finetune_lm", *TINY, "--csv", path, "--n-samples", "0", "--run-dir", tmp_path / "lm", capsys=capsys,
          needles=[f"--csv {path}: 1 document, too few for a language model: it needs at least 2"])
    assert not (tmp_path / "clas").exists() and not (tmp_path / "lm").exists()


@pytest.mark.parametrize("n_labels, valid_pct", [(2, 0.2), (2, 0.05), (3, 0.1), (5, 0.5), (4, 0.9)])
def test_needed_rows_is_the_least_that_splits(n_labels, valid_pct):
    """`needed_rows` documents give `random_split` room for every class's minimums; one fewer does not."""
    def fits(n):
        train, valid = random_split(n, valid_pct, np.random.default_rng(0))
        return len(valid) >= n_labels * L.MIN_VALID and len(train) >= n_labels * L.MIN_TRAIN

    need = L.needed_rows(n_labels, valid_pct)
    assert fits(need) and not fits(need - 1)
    assert L.needed_rows(n_labels, None) == n_labels * (L.MIN_TRAIN + L.MIN_VALID)
