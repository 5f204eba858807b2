"""The user's commands end to end, as subprocesses, on the shipped sample corpus with the `tiny` preset:
finetune_lm.py -> train_classifier.py -> predict.py / generate.py, plus what they share (awdlstm/cli.py,
recipes.py, the data splits and sources)."""
import argparse
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from run_scripts import ROOT, SAMPLE, SCRIPTS, TINY, main

from awdlstm import cli
from awdlstm.data.splits import random_split, sample, split_docs
from awdlstm.data.text_source import TextSource
from awdlstm.precision import cpu_has_fast_bf16
from awdlstm.predict import ensemble_accuracy, load_classifier, predict, save_valid_preds
from awdlstm.pretrained import find_pretrained
from awdlstm.recipes import CLAS_PRESETS, LM_PRESETS, ClasRecipe, LMRecipe
from awdlstm.tokenizers.corpus import select_docs, tokenize_corpus
from awdlstm.tokenizers.vocab import Vocab
from awdlstm.ulmfit import _lm_model


def in_process(name: str, *args: str, capsys, monkeypatch, cwd: Path) -> tuple[int, str, str]:
    """Run a script's main() through its error guard, as `python scripts/<name>.py args` would, in `cwd`:
    (exit status, stdout, stderr)."""
    monkeypatch.chdir(cwd)
    code, _ = main(name, *args)  # no capsys: the output stays for the caller to read
    out = capsys.readouterr()
    return code, out.out, out.err


def run(script: str, *args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPTS / script), *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny pipeline: finetune_lm.py then train_classifier.py, both into the default runs/ folder."""
    cwd = tmp_path_factory.mktemp("pipeline")
    cache = str(cwd / "cache")
    lm = run("finetune_lm.py", *TINY, "--csv", str(SAMPLE), "--cache-dir", cache, "--n-words", "8", cwd=cwd)
    assert lm.returncode == 0, lm.stderr[-2000:]
    clas = run("train_classifier.py", *TINY, "--csv", str(SAMPLE), "--cache-dir", cache, cwd=cwd)
    assert clas.returncode == 0, clas.stderr[-2000:]
    (lm_dir,) = (cwd / "runs").glob("lm-*")
    (clas_dir,) = (cwd / "runs").glob("clas-*")
    return {"cwd": cwd, "lm": lm, "clas": clas, "lm_dir": lm_dir, "clas_dir": clas_dir}


def test_finetune_lm_run_folder(runs):
    d = runs["lm_dir"]
    for name in ["config.json", "vocab.json", "lm.pt", "lm.json", "encoder.pt", "encoder.json", "history.csv",
                 "history.json", "log.txt"]:
        assert (d / name).is_file(), name
    assert not (d / "last.pt").exists()
    out = runs["lm"].stdout
    assert "epoch     train_loss  valid_loss  accuracy  perplexity  time" in out
    assert out.count("i liked this movie because") == 2  # two samples, as the chapter
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["preset"] == "tiny" and cfg["recipe"]["emb_sz"] == 16 and cfg["recipe"]["lm_docs"] == 40
    assert cfg["results"]["n_docs"] == 40 and cfg["results"]["vocab_size"] == len(Vocab.load(d / "vocab.json"))
    rows = list(csv.DictReader(open(d / "history.csv")))
    assert [r["fit"] for r in rows] == ["1", "2"]  # frozen epoch, then unfrozen epoch
    assert 0 < float(rows[-1]["perplexity"]) < len(Vocab.load(d / "vocab.json"))  # better than uniform
    assert "train_loss" in (d / "log.txt").read_text()


def test_train_classifier_run_folder(runs):
    d, lm_dir = runs["clas_dir"], runs["lm_dir"]
    for name in ["config.json", "vocab.json", "labels.json", "classifier.pt", "classifier.json", "history.csv"]:
        assert (d / name).is_file(), name
    assert Vocab.load(d / "vocab.json") == Vocab.load(lm_dir / "vocab.json")  # the LM's vocab
    assert json.loads((d / "labels.json").read_text())["labels"] == ["0", "1"]  # (with its checksum)
    out = runs["clas"].stdout
    assert "epoch     train_loss  valid_loss  accuracy  time" in out
    assert "final validation accuracy:" in out
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["encoder"] == str(Path("runs") / lm_dir.name / "encoder.pt")  # default: the newest LM run
    assert cfg["results"]["n_train"] == 48 and cfg["results"]["n_valid"] == 24
    assert 0.0 <= cfg["results"]["accuracy"] <= 1.0
    assert len(list(csv.DictReader(open(d / "history.csv")))) == 2  # the tiny preset's 2 stages of 1 epoch


def test_predict_keeps_input_order(runs, capsys, monkeypatch):
    texts = ["Great.", "A dull, long and pointless film that I regret seeing.", "Wonderful acting, loved it!",
             "Bad", "This is the best movie of the year, and everyone should see it twice."]
    a = run("predict.py", "--json", "--threads", "1", *texts, cwd=runs["cwd"])
    assert a.returncode == 0, a.stderr
    res = [json.loads(line) for line in a.stdout.splitlines()]
    assert [r["text"] for r in res] == texts
    for r in res:
        assert set(r["probs"]) == {"0", "1"} and abs(sum(r["probs"].values()) - 1) < 1e-5
        assert r["label"] == max(r["probs"], key=r["probs"].get)
    perm = [3, 0, 4, 2, 1]  # same batch, other input order: the same numbers, permuted
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(texts[i] for i in perm) + "\n"))
    code, out, err = in_process("predict", "--json", capsys=capsys, monkeypatch=monkeypatch, cwd=runs["cwd"])
    assert code == 0, err
    res_b = [json.loads(line) for line in out.splitlines()]
    got = np.array([list(r["probs"].values()) for r in res_b])
    np.testing.assert_allclose(got, [list(res[i]["probs"].values()) for i in perm], atol=1e-5)


def test_generate(runs, capsys, monkeypatch):
    code, out, err = in_process("generate", "--model", str(runs["lm_dir"]), "--n-words", "5", "--n", "2",
                                "--seed", "3", "The film", capsys=capsys, monkeypatch=monkeypatch, cwd=runs["cwd"])
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) >= 2 and lines[0].lower().startswith("the film")


def test_bad_input_is_one_line_and_nonzero(runs, tmp_path, capsys, monkeypatch):
    missing = run("train_classifier.py", "--encoder", str(tmp_path / "nope"), cwd=tmp_path)  # a real process
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        f"train_classifier.py: error: run folder {tmp_path / 'nope'} does not exist"]
    code, _, err = in_process("finetune_lm", "--no-such-flag", capsys=capsys, monkeypatch=monkeypatch, cwd=tmp_path)
    assert code == 2 and err.strip().splitlines() == [
        "finetune_lm.py: error: unrecognized arguments: --no-such-flag (see --help)"]
    code, _, err = in_process("predict", "--model", str(runs["clas_dir"]), "--files", str(tmp_path / "x.txt"),
                              capsys=capsys, monkeypatch=monkeypatch, cwd=tmp_path)
    assert code == 1 and err.strip().splitlines() == [f"predict.py: error: {tmp_path / 'x.txt'} does not exist"]
    code, _, err = in_process("finetune_lm", *TINY, "--csv", str(tmp_path / "none.csv"), "--run-dir",
                              str(tmp_path / "r"), capsys=capsys, monkeypatch=monkeypatch, cwd=tmp_path)
    assert code == 1 and err.strip().splitlines() == [f"finetune_lm.py: error: {tmp_path / 'none.csv'} does not exist"]
    code, _, err = in_process("generate", "--model", str(runs["clas_dir"]), capsys=capsys, monkeypatch=monkeypatch,
                              cwd=tmp_path)
    assert code == 1 and "has no lm.pt" in err


# ---------------------------------------------------------------- awdlstm/cli.py, recipes.py, data/splits.py

def test_recipe_flags_override_the_preset():
    ap = cli.OneLineParser()
    cli.add_common_flags(ap, CLAS_PRESETS)
    cli.add_recipe_flags(ap, ClasRecipe, CLAS_PRESETS)
    args = ap.parse_args(["--preset", "gpu", "--bs", "32", "--lrs", "0.1,0.01,0.01,0.001", "--epochs", "2,3,0,1"])
    name, r = cli.recipe_from_args(args, CLAS_PRESETS, "cpu")
    assert name == "gpu" and r.bs == 32 and r.lrs == (0.1, 0.01, 0.01, 0.001) and r.epochs == (2, 3, 0, 1)
    assert r.seq_len == 72 and r.drop_mult == 0.5  # the rest is the book's
    name, r = cli.recipe_from_args(ap.parse_args([]), CLAS_PRESETS, "cpu")
    assert name == "cpu" and r == CLAS_PRESETS["cpu"]
    assert "lr_mult" in ap.epilog and "1,1,1,2" in ap.epilog  # the presets are shown in --help
    with pytest.raises(ValueError, match="--epochs needs 4 values"):
        cli.recipe_from_args(ap.parse_args(["--epochs", "1,1"]), CLAS_PRESETS, "cpu")


@pytest.mark.parametrize("flag, value, why", [
    ("--lr", "-1", "must be > 0, got -1.0"), ("--lr", "nan", "must be a finite number, got nan"),
    ("--frozen-lr", "inf", "must be a finite number, got inf"), ("--valid-pct", "1", "must be in (0, 1), got 1.0"),
    ("--bs", "0", "must be > 0, got 0"), ("--epochs", "-2", "must be >= 0, got -2"),
    ("--drop-mult", "-0.1", "must be >= 0, got -0.1"), ("--seed", "-3", "must be >= 0, got -3"),
    ("--precision", "fp8", "must be one of auto, fp32, bf16, fp16, got 'fp8'")])
def test_numeric_flags_are_range_checked_when_parsed(flag, value, why, capsys):
    """A value out of range ends at parse time with one line naming the flag (exit 2), before any work."""
    ap = cli.lm_parser("finetune_lm.py", "", LM_PRESETS, "x")
    with pytest.raises(SystemExit) as e:
        ap.parse_args([flag, value])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"finetune_lm.py: error: argument {flag}: {why} (see --help)"]


def test_recipes_check_their_fields():
    with pytest.raises(ValueError, match="--lr must be > 0"):
        LMRecipe(lr=-1.0)
    with pytest.raises(ValueError, match="--lrs must be a finite number"):
        ClasRecipe(lrs=(1e-2, float("nan"), 1e-2, 1e-2))
    with pytest.raises(ValueError, match="every stage has 0 epochs"):
        ClasRecipe(epochs=(0, 0, 0, 0))


def test_book_presets():
    lm, clas = LM_PRESETS["gpu"], CLAS_PRESETS["gpu"]
    assert (lm.emb_sz, lm.n_hid, lm.n_layers, lm.bs, lm.seq_len, lm.drop_mult) == (400, 1152, 3, 128, 80, 0.3)
    assert (lm.frozen_epochs, lm.frozen_lr, lm.epochs, lm.lr) == (1, 2e-2, 10, 2e-3)
    assert clas.epochs == (1, 1, 1, 2) and clas.lrs == (2e-2, 1e-2, 5e-3, 1e-3) and clas.lr_mult == 2.6**4


def test_subset_vocab_equals_vocab_of_those_documents():
    texts = ["The cat sat. The cat!", "A dog, a dog and A DOG.", "zebra zebra cat", "Dog days; the end."]
    corpus = tokenize_corpus(texts, n_workers=1)
    idxs = np.array([2, 3])
    sub = corpus.subset(idxs)
    expected = Vocab.build([corpus[i] for i in idxs], min_freq=1)
    assert Vocab.from_counts(sub.counts(), min_freq=1) == expected
    assert sub.to_lists() == [corpus[2], corpus[3]]
    assert corpus.subset(np.array([1]), max_tokens=3).to_lists() == [corpus[1][:3]]
    ids, offsets = corpus.numericalize(expected)
    sel_ids, sel_off = select_docs(ids, offsets, idxs)
    assert sel_off.tolist() == [0, len(corpus[2]), len(corpus[2]) + len(corpus[3])]
    assert expected.decode(sel_ids.tolist()) == corpus[2] + corpus[3]


def test_split_and_sample_are_seeded():
    tr, va = random_split(10, 0.2, np.random.default_rng(0))
    assert len(va) == 2 and sorted([*tr, *va]) == list(range(10))
    tr2, va2 = random_split(10, 0.2, np.random.default_rng(0))
    assert va.tolist() == va2.tolist()
    s = sample(np.arange(100), 5, np.random.default_rng(1))
    assert len(s) == 5 and s.tolist() == sorted(s.tolist())
    assert sample(np.arange(4), 0, np.random.default_rng(1)).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="valid_pct"):
        random_split(10, 1.5, np.random.default_rng(0))


def test_one_line_parser_error(capsys):
    ap = cli.OneLineParser(prog="x.py")
    ap.add_argument("--n", type=int)
    with pytest.raises(SystemExit) as e:
        ap.parse_args(["--n", "abc"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "x.py: error: argument --n: invalid int value: 'abc' (see --help)"]
    assert isinstance(ap, argparse.ArgumentParser)


def test_pretrained_fastai_files_and_our_run_folder(tmp_path, runs, fixtures_dir):
    """--pretrained DIR (fastai's lstm_fwd.pth + itos pickle) and --pretrained RUN_DIR (our lm.pt)."""
    import pickle

    fx = torch.load(fixtures_dir / "awd_lstm_lm.pt", weights_only=True)
    old_itos = Vocab.load(runs["lm_dir"] / "vocab.json").itos[:9] + [f"w{i}" for i in range(31)]  # 40 rows
    torch.save(fx["state_dict"], tmp_path / "lstm_fwd.pth")
    (tmp_path / "itos_wt103.pkl").write_bytes(pickle.dumps(old_itos))
    vocab = Vocab(old_itos[:9] + ["w3", "new", "w0"] + ["xxfake"] * 4)
    recipe = LMRecipe(emb_sz=99, drop_mult=0.5)  # the sizes come from the weights, the dropouts from the recipe
    model, source = _lm_model(vocab, recipe, str(tmp_path), backwards=False, progress=False)
    assert (model.cfg.emb_sz, model.cfg.n_hid, model.cfg.n_layers, model.cfg.drop_mult) == (16, 24, 3, 0.5)
    emb = model.encoder.encoder.weight
    old = fx["state_dict"]["0.encoder.weight"]
    assert torch.equal(emb[9], old[9 + 3]) and torch.equal(emb[11], old[9])  # w3, w0 keep their rows
    assert torch.allclose(emb[10], old.mean(0))  # a new word gets the mean row
    assert "lstm_fwd.pth" in source
    ours = Vocab.load(runs["lm_dir"] / "vocab.json")
    model, _ = _lm_model(ours, LMRecipe(drop_mult=0.3), str(runs["lm_dir"]), backwards=False, progress=False)
    saved = torch.load(runs["lm_dir"] / "lm.pt", weights_only=True)
    real = torch.tensor([t != "xxfake" for t in ours.itos])  # xxfake repeats: all take the last one's row
    assert torch.equal(model.encoder.encoder.weight[real], saved["encoder.encoder.weight"][real])
    assert torch.equal(model.encoder.rnns[0].module.weight_ih_l0, saved["encoder.rnns.0.module.weight_ih_l0"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_pretrained(str(tmp_path / "missing"), backwards=False)


def test_backwards_pipeline_and_ensemble(runs, capsys, monkeypatch):
    """--backwards LM -> classifier (reads texts reversed) -> predict averages forward and backward models."""
    cwd, cache = runs["cwd"], str(runs["cwd"] / "cache")
    small = [*TINY, "--csv", str(SAMPLE), "--cache-dir", cache]
    code, out, err = in_process("finetune_lm", *small, "--backwards", "--lm-docs", "20", "--epochs", "0",
                                "--n-samples", "0", "--run-dir", "runs/bwd-lm", capsys=capsys,
                                monkeypatch=monkeypatch, cwd=cwd)
    assert code == 0, err
    assert json.loads((cwd / "runs/bwd-lm/config.json").read_text())["backwards"] is True
    code, out, err = in_process("train_classifier", *small, "--encoder", "runs/bwd-lm", "--epochs", "1,0,0,0", "--train-docs", "16", "--valid-docs", "8", "--run-dir",
                                "runs/bwd-clas", capsys=capsys, monkeypatch=monkeypatch, cwd=cwd)
    assert code == 0, err
    assert json.loads((cwd / "runs/bwd-clas/config.json").read_text())["backwards"] is True
    texts = ["Not good at all, I am afraid.", "Lovely!"]
    probs = []
    for models in (["runs/bwd-clas"], [str(runs["clas_dir"])], ["runs/bwd-clas", str(runs["clas_dir"])]):
        flags = [x for m in models for x in ("--model", m)]
        code, out, err = in_process("predict", "--json", *flags, *texts, capsys=capsys, monkeypatch=monkeypatch,
                                    cwd=cwd)
        assert code == 0, err
        probs.append(np.array([list(json.loads(line)["probs"].values()) for line in out.splitlines()]))
    np.testing.assert_allclose(probs[2], (probs[0] + probs[1]) / 2, atol=1e-6)
    assert not np.allclose(probs[0], probs[1])
    # the ensemble on the validation split: the two runs held out different documents
    code, out, err = in_process("ensemble", "runs/bwd-clas", str(runs["clas_dir"]), capsys=capsys,
                                monkeypatch=monkeypatch, cwd=cwd)
    assert code == 1 and "holds other validation documents" in err


def test_valid_preds_and_ensemble_accuracy(runs, tmp_path, capsys, monkeypatch):
    """train_classifier writes its validation predictions; ensemble.py averages runs' probabilities."""
    d = runs["clas_dir"]
    saved = json.loads((d / "valid_preds.json").read_text())
    cfg = json.loads((d / "config.json").read_text())
    assert len(saved["doc_index"]) == len(saved["targets"]) == len(saved["probs"]) == 24
    own = float(np.mean(np.argmax(saved["probs"], 1) == np.array(saved["targets"])))
    assert own == pytest.approx(cfg["results"]["accuracy"], abs=1e-6)  # the predictions the run validated
    code, out, err = in_process("ensemble", "--json", str(d), str(d), capsys=capsys, monkeypatch=monkeypatch,
                                cwd=runs["cwd"])
    assert code == 0, err
    assert json.loads(out)["ensemble"] == pytest.approx(own)
    # two made-up runs over 4 documents (targets 0 1 1 0): 3/4 and 2/4 right alone, 4/4 averaged
    a, b = tmp_path / "a", tmp_path / "b"
    for run, p in ((a, [[.9, .1], [.1, .9], [.2, .8], [.45, .55]]), (b, [[.6, .4], [.7, .3], [.7, .3], [.9, .1]])):
        run.mkdir()
        save_valid_preds(run, [5, 7, 9, 11], [0, 1, 1, 0], torch.tensor(p))
    res = ensemble_accuracy([a, b])
    assert res["each"] == {str(a): 0.75, str(b): 0.5} and res["ensemble"] == 1.0 and res["n_valid"] == 4
    (b / "valid_preds.json").write_text('{"doc_index": [5, 7], "targets": [0, 1, 1, 0], "probs": []}')
    with pytest.raises(ValueError, match="valid_preds.json: not a run's validation predictions"):
        ensemble_accuracy([a, b])


def test_sources_folder_csv_and_split(tmp_path):
    """--folder (IMDb layout: split by train/test; plain: random split) and --csv with --valid-col."""
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            (tmp_path / "imdb" / split / label).mkdir(parents=True)
            for i in range(3):
                (tmp_path / "imdb" / split / label / f"{i}.txt").write_text(f"{label} review {i} of {split}")
    (tmp_path / "imdb" / "unsup").mkdir()
    (tmp_path / "imdb" / "unsup" / "0.txt").write_text("no label")
    src = TextSource("folder", str(tmp_path / "imdb"))
    texts = src.read(labelled=True)
    assert len(texts) == 12 and sum(texts.is_valid) == 6 and set(texts.labels) == {"neg", "pos"}
    assert len(src.read(labelled=False)) == 13  # the LM also reads unsup
    train, valid = split_docs(texts.is_valid, len(texts), 0.2, np.random.default_rng(0), n_train=4)
    assert len(train) == 4 and len(valid) == 6 and not any(texts.is_valid[i] for i in train)
    path = tmp_path / "d.csv"
    path.write_text("review,y,v\nok,a,0\nfine,b,1\nbad,a,no\ngood,b,yes\n")
    texts = TextSource("csv", str(path), "review", "y", "v").read(labelled=True)
    train, valid = split_docs(texts.is_valid, len(texts), 0.2, np.random.default_rng(0))
    assert train.tolist() == [0, 2] and valid.tolist() == [1, 3]
    texts = TextSource("csv", str(path), "review", "y").read(labelled=True)
    train, valid = split_docs(texts.is_valid, len(texts), 0.5, np.random.default_rng(0))
    assert len(train) == 2 and len(valid) == 2
    with pytest.raises(ValueError, match="missing column"):
        TextSource("csv", str(path), "nope", "y").read(labelled=True)


def test_predict_cuts_texts_as_in_training(runs):
    """predict() reads at most the classifier's max_tokens tokens of each text, as train_classifier did."""
    clf = load_classifier(runs["clas_dir"])
    model, vocab = clf.model, clf.vocab
    assert clf.max_tokens == 64 and clf.labels.itos == ["0", "1"]
    text = "A long review that goes on and on. " * 20
    cut = predict(model, vocab, [text], max_tokens=6)
    ids = vocab.encode(tokenize_corpus([text], n_workers=1)[0][:6])
    model.reset()
    with torch.no_grad():
        expected = model(torch.tensor([ids]))[0].softmax(-1)
    torch.testing.assert_close(cut, expected)
    assert not torch.allclose(predict(model, vocab, [text]), cut)


def test_pretrain_lm_keeps_wikitexts_split_and_feeds_finetune_lm(tmp_path, capsys, monkeypatch):
    """Stage 1 on a small wikitext-103-style folder (train.csv, test.csv): its own split is kept, nothing is
    frozen, and finetune_lm.py --pretrained starts stage 2 from the result."""
    texts = [r["text"] for r in csv.DictReader(SAMPLE.open(encoding="utf-8"))][:36]
    wiki = tmp_path / "wikitext-103"
    wiki.mkdir()
    for name, rows in (("train.csv", texts[:30]), ("test.csv", texts[30:])):
        with (wiki / name).open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([t] for t in rows)
    cache = str(tmp_path / "cache")
    code, out, err = in_process("pretrain_lm", *TINY, "--wikitext", str(wiki), "--lm-docs", "0", "--n-samples", "0",
                                "--cache-dir", cache, "--run-dir", str(tmp_path / "pre"),
                                capsys=capsys, monkeypatch=monkeypatch, cwd=tmp_path)
    assert code == 0, err
    assert "36 documents (30 train, 6 valid)" in out
    config = json.loads((tmp_path / "pre" / "config.json").read_text())
    assert config["stage"] == "pretrain_lm" and config["recipe"]["frozen_epochs"] == 0
    history = json.loads((tmp_path / "pre" / "history.json").read_text())
    assert [row["fit"] for row in history["epochs"]] == [1]  # one fit, unfrozen from the start
    code, out, err = in_process("finetune_lm", *TINY, "--csv", str(SAMPLE), "--pretrained", str(tmp_path / "pre"),
                                "--n-samples", "0", "--cache-dir", cache, "--run-dir", str(tmp_path / "ft"),
                                capsys=capsys, monkeypatch=monkeypatch, cwd=tmp_path)
    assert code == 0, err
    assert f"model: {tmp_path / 'pre' / 'lm.pt'}" in out and (tmp_path / "ft" / "lm.pt").is_file()


@pytest.mark.parametrize("prec, atol", [("int8", 0.05), ("bf16", 0.02)])
def test_predict_int8_and_bf16_close_to_fp32(runs, capsys, monkeypatch, prec, atol):
    """--precision int8 (quantized copy of the classifier) and bf16 (autocast) give nearly the fp32
    probabilities, same order; bf16 on a CPU without native bf16 is refused in one line."""
    texts = ["Great.", "A dull, long and pointless film that I regret seeing.", "Wonderful acting, loved it!"]
    probs = {}
    for p in ("fp32", prec):
        code, out, err = in_process("predict", "--json", "--precision", p, *texts, capsys=capsys,
                                    monkeypatch=monkeypatch, cwd=runs["cwd"])
        if p == "bf16" and not cpu_has_fast_bf16():
            assert code == 1 and "no native bf16" in err and len(err.strip().splitlines()) == 1
            return
        assert code == 0, err
        res = [json.loads(line) for line in out.splitlines()]
        assert [r["text"] for r in res] == texts
        probs[p] = np.array([list(r["probs"].values()) for r in res])
    np.testing.assert_allclose(probs[prec], probs["fp32"], atol=atol)
    assert not np.array_equal(probs[prec], probs["fp32"])  # the other path really ran
    if prec == "int8":
        code, _, err = in_process("predict", "--precision", "int8", "--device", "cuda", "Great.", capsys=capsys,
                                  monkeypatch=monkeypatch, cwd=runs["cwd"])
        assert code == 1 and "error" in err
