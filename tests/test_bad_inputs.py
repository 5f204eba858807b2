"""Every bad input of issue #8 against the real scripts (in-process, through their error guard): exit status 1
and ONE line on stderr, `<script>.py: error: ...`, naming the file or flag at fault; never a traceback."""
import hashlib
import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from run_scripts import SAMPLE, TINY, fails, main
from test_download import make_tgz
from tiny_models import TinyLM, lm_batches

from awdlstm import load_encoder, load_model
from awdlstm.data import download
from awdlstm.train import Learner, TrainConfig
from awdlstm.train_checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("no_plots")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny language model run and a classifier run on it."""
    d = tmp_path_factory.mktemp("bad")
    cache = ["--cache-dir", str(d / "cache")]
    assert main("finetune_lm", *TINY, "--csv", str(SAMPLE), *cache, "--lm-docs", "16", "--epochs", "1",
                "--n-samples", "0", "--run-dir", str(d / "lm"))[0] == 0
    assert main("train_classifier", *TINY, "--csv", str(SAMPLE), *cache, "--encoder", str(d / "lm"),
                "--epochs", "1,0,0,0", "--train-docs", "16", "--valid-docs", "8", "--run-dir", str(d / "clas"))[0] == 0
    return d




def copy_run(src, dst):
    shutil.copytree(src, dst)
    return dst


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_a_weight(path, tensor: torch.Tensor):
    """Corrupt one byte inside the tensor data of a torch file (stored uncompressed): `torch.load` reads it
    without complaint, only the checksum saved with the weights can tell."""
    data = bytearray(path.read_bytes())
    i = data.find(tensor.numpy().tobytes()[:64])
    assert i > 0
    data[i + 10] ^= 0xFF
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- texts

def test_bad_corpora(runs, tmp_path, capsys):
    lm = [*TINY, "--n-samples", "0", "--run-dir", str(tmp_path / "out"), "--cache-dir", str(runs / "cache")]
    (tmp_path / "header_only.csv").write_text("text,label\n")
    fails("finetune_lm", *lm, "--csv", tmp_path / "header_only.csv", capsys=capsys,
          needles=[f"--csv {tmp_path / 'header_only.csv'}: no texts (an empty corpus)"])
    (tmp_path / "zero.csv").write_bytes(b"")
    fails("finetune_lm", *lm, "--csv", tmp_path / "zero.csv", capsys=capsys, needles=[tmp_path / "zero.csv", "missing column"])
    (tmp_path / "cols.csv").write_text("review,stars\ngood,1\nbad,0\n")
    fails("finetune_lm", *lm, "--csv", tmp_path / "cols.csv", capsys=capsys,
          needles=[f"{tmp_path / 'cols.csv'}: missing column(s) ['text']; the header has ['review', 'stars']"])
    (tmp_path / "latin1.csv").write_bytes("text,label\ncaf\xe9 noir,1\n".encode("latin-1"))
    fails("finetune_lm", *lm, "--csv", tmp_path / "latin1.csv", capsys=capsys,
          needles=[f"{tmp_path / 'latin1.csv'}: not UTF-8 text"])
    (tmp_path / "empty_dir").mkdir()
    fails("finetune_lm", *lm, "--folder", tmp_path / "empty_dir", capsys=capsys,
          needles=[f"no .txt files found under {tmp_path / 'empty_dir'}"])
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("fine")
    (tmp_path / "docs" / "b.txt").write_bytes(b"\xff\xfe broken")
    fails("finetune_lm", *lm, "--folder", tmp_path / "docs", capsys=capsys,
          needles=[f"{tmp_path / 'docs' / 'b.txt'}: not UTF-8 text"])


def test_bad_labelled_data(runs, tmp_path, capsys):
    clas = [*TINY, "--encoder", str(runs / "lm"), "--run-dir", str(tmp_path / "out"), "--cache-dir", str(runs / "cache")]
    fails("train_classifier", *clas, "--csv", SAMPLE, "--label-col", "stars", capsys=capsys,
          needles=[f"{SAMPLE}: missing column(s) ['stars']"])
    for label, n in [("pos", 3), ("neg", 0), ("neutral", 2)]:
        (tmp_path / "reviews" / label).mkdir(parents=True)
        for i in range(n):
            (tmp_path / "reviews" / label / f"{i}.txt").write_text(f"a {label} review")
    fails("train_classifier", *clas, "--folder", tmp_path / "reviews", capsys=capsys,
          needles=[f"class folder {tmp_path / 'reviews' / 'neg'} has no documents"])
    shutil.rmtree(tmp_path / "reviews" / "neg")
    shutil.rmtree(tmp_path / "reviews" / "neutral")
    fails("train_classifier", *clas, "--folder", tmp_path / "reviews", capsys=capsys,
          needles=[f"--folder {tmp_path / 'reviews'}: a classifier needs at least two labels, found ['pos']"])


def test_empty_and_blank_documents_train(runs, tmp_path, capsys):
    """Empty documents are documents (an `xxbos` only): the language model and the classifier train."""
    rows = list(csvrows(SAMPLE))
    rows = [r for r in rows if r["label"] == "0"][:15] + [r for r in rows if r["label"] == "1"][:15]
    for i in (0, 7, 8, 20):
        rows[i]["text"] = "" if i % 2 == 0 else "   \n "
    path = tmp_path / "blanks.csv"
    write_csv(path, rows)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main("finetune_lm", *TINY, "--csv", str(path), *cache, "--lm-docs", "0", "--epochs", "1", "--n-samples", "0",
                "--run-dir", str(tmp_path / "lm"), capsys=capsys) == (0, "")
    assert main("train_classifier", *TINY, "--csv", str(path), *cache, "--encoder", str(tmp_path / "lm"),
                "--epochs", "1,0,0,0", "--train-docs", "0", "--valid-docs", "0",
                "--run-dir", str(tmp_path / "clas"), capsys=capsys) == (0, "")
    (tmp_path / "empty.txt").write_text("")
    code, _ = main("predict", "--model", str(tmp_path / "clas"), "--json", "--files", str(tmp_path / "empty.txt"),
                   capsys=capsys)
    assert code == 0


def csvrows(path):
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def write_csv(path, rows):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_one_megabyte_document(runs, tmp_path, capsys):
    """A 1 MB review among short ones (a CSV field far above csv's default limit) tokenizes in linear time,
    trains the language model and is classified (cut to the classifier's max_tokens).
    (10 MB: the same path; tokenizing it takes ~25 s on one core, too long for a unit test.)"""
    rows = list(csvrows(SAMPLE))[:8]
    words = " ".join(r["text"] for r in rows)
    big = " ".join(f"{words} w{i}" for i in range(1_000_000 // len(words) + 1))[:1_000_000]  # new types all along
    rows[3]["text"] = big
    path = tmp_path / "big.csv"
    write_csv(path, rows)
    assert main("finetune_lm", *TINY, "--csv", str(path), "--cache-dir", str(tmp_path / "cache"), "--lm-docs", "0",
                "--bs", "256", "--seq-len", "16", "--max-vocab", "60", "--emb-sz", "8", "--n-hid", "8", "--frozen-epochs", "1", "--epochs", "0", "--n-samples", "0",
                "--run-dir", str(tmp_path / "lm"), capsys=capsys) == (0, "")
    cfg = json.loads((tmp_path / "lm" / "config.json").read_text())
    assert cfg["results"]["n_tokens"] > 200_000 and np.isfinite(cfg["results"]["valid_loss"])
    (tmp_path / "big.txt").write_text(big)
    code, err = main("predict", "--model", str(runs / "clas"), "--files", str(tmp_path / "big.txt"), capsys=capsys)
    assert code == 0, err


# ---------------------------------------------------------------- weights and run folders

def test_truncated_and_corrupted_files(runs, tmp_path, capsys):
    lm = copy_run(runs / "lm", tmp_path / "lm")
    truncate(lm / "lm.pt")
    truncate(lm / "encoder.pt")
    fails("generate", "--model", lm, capsys=capsys, needles=[f"{lm / 'lm.pt'}: truncated or corrupted"])
    fails("train_classifier", *TINY, "--csv", SAMPLE, "--encoder", lm, "--run-dir", tmp_path / "c", capsys=capsys,
          needles=[f"{lm / 'encoder.pt'}: truncated or corrupted"])
    fails("finetune_lm", *TINY, "--csv", SAMPLE, "--pretrained", lm, "--run-dir", tmp_path / "l", capsys=capsys,
          needles=[f"{lm / 'lm.pt'}: truncated or corrupted"])
    (lm / "lm.pt").write_bytes(b"")
    fails("generate", "--model", lm, capsys=capsys, needles=[f"{lm / 'lm.pt'}: truncated or corrupted"])
    lm2 = copy_run(runs / "lm", tmp_path / "lm2")
    (lm2 / "lm.json").write_text('{"format": "awdlstm", "vers')
    fails("generate", "--model", lm2, capsys=capsys, needles=[f"{lm2 / 'lm.json'}: truncated or corrupted JSON"])
    (lm2 / "config.json").write_text("{")
    fails("train_classifier", *TINY, "--csv", SAMPLE, "--encoder", lm2, "--run-dir", tmp_path / "c", capsys=capsys,
          needles=[f"{lm2 / 'config.json'}: truncated or corrupted JSON"])
    lm3 = copy_run(runs / "lm", tmp_path / "lm3")
    emb = torch.load(lm3 / "lm.pt", weights_only=True)["encoder.encoder.weight"]
    flip_a_weight(lm3 / "lm.pt", emb)
    assert not torch.equal(torch.load(lm3 / "lm.pt", weights_only=True)["encoder.encoder.weight"], emb)
    fails("generate", "--model", lm3, capsys=capsys,
          needles=[f"{lm3 / 'lm.pt'}: corrupted, the weights do not match the checksum saved with them"])
    flip_a_weight(lm3 / "encoder.pt", emb)
    fails("train_classifier", *TINY, "--csv", SAMPLE, "--encoder", lm3, "--run-dir", tmp_path / "c", capsys=capsys,
          needles=[f"{lm3 / 'encoder.pt'}: corrupted, the weights do not match"])
    clas = copy_run(runs / "clas", tmp_path / "clas")
    truncate(clas / "classifier.pt")
    fails("predict", "--model", clas, "good", capsys=capsys, needles=[f"{clas / 'classifier.pt'}: truncated or corrupted"])
    clas2 = copy_run(runs / "clas", tmp_path / "clas2")
    (clas2 / "labels.json").write_text('{"labels": ["neg", "pos", "meh"]}')
    fails("predict", "--model", clas2, "good", capsys=capsys,
          needles=[f"{clas2}: labels.json has 3 labels but classifier.pt predicts 2 classes"])
    (clas2 / "labels.json").write_text('{"labels": ["ne')
    fails("predict", "--model", clas2, "good", capsys=capsys, needles=[f"{clas2 / 'labels.json'}: truncated or corrupted"])


def test_weights_of_another_architecture(runs, tmp_path, capsys):
    clas = copy_run(runs / "clas", tmp_path / "clas")
    shutil.copy(runs / "lm" / "lm.pt", clas / "classifier.pt")  # an LM's weights under a classifier's config
    fails("predict", "--model", clas, "good", capsys=capsys, needles=[f"{clas / 'classifier.pt'} does not fit TextClassifier"])
    shutil.copy(runs / "lm" / "lm.json", clas / "classifier.json")
    fails("predict", "--model", clas, "good", capsys=capsys, needles=[f"{clas / 'classifier.pt'} is not a classifier"])
    lm = copy_run(runs / "lm", tmp_path / "lm")
    shutil.copy(runs / "clas" / "classifier.pt", lm / "lm.pt")
    fails("generate", "--model", lm, capsys=capsys, needles=[f"{lm / 'lm.pt'} does not fit LanguageModel"])
    shutil.copy(runs / "clas" / "classifier.pt", lm / "encoder.pt")
    fails("train_classifier", *TINY, "--csv", SAMPLE, "--encoder", lm, "--run-dir", tmp_path / "c", capsys=capsys,
          needles=[f"{lm / 'encoder.pt'} does not fit AWDLSTM"])
    fails("finetune_lm", *TINY, "--csv", SAMPLE, "--pretrained", runs / "clas" / "classifier.pt", "--run-dir",
          tmp_path / "l", capsys=capsys, needles=[f"{runs / 'clas' / 'classifier.pt'}: holds a saved classifier"])
    fails("generate", "--model", runs / "clas", capsys=capsys, needles=[f"{runs / 'clas'} has no lm.pt"])
    fails("predict", "--model", runs / "lm", "good", capsys=capsys, needles=[f"{runs / 'lm'} has no classifier.pt"])


def test_vocab_that_does_not_match_the_encoder(runs, tmp_path, capsys):
    lm = copy_run(runs / "lm", tmp_path / "lm")
    itos = json.loads((lm / "vocab.json").read_text())["itos"]
    (lm / "vocab.json").write_text(json.dumps({"itos": itos[:-1] + ["a-token-it-never-saw"]}))
    fails("train_classifier", *TINY, "--csv", SAMPLE, "--encoder", lm, "--run-dir", tmp_path / "c", capsys=capsys,
          needles=[f"{lm / 'encoder.pt'}: the encoder was saved with another vocab"])
    (lm / "vocab.json").write_text(json.dumps({"itos": itos[:-3]}))
    fails("train_classifier", *TINY, "--csv", SAMPLE, "--encoder", lm, "--run-dir", tmp_path / "c", capsys=capsys,
          needles=[f"{lm / 'encoder.pt'}: the encoder was saved with another vocab ({len(itos)} tokens; given {len(itos) - 3})"])
    (lm / "vocab.json").write_text("[1, 2")
    fails("train_classifier", *TINY, "--csv", SAMPLE, "--encoder", lm, "--run-dir", tmp_path / "c", capsys=capsys,
          needles=[f"cannot read vocab file {lm / 'vocab.json'}"])
    # a fastai-style .pth whose itos pickle is not its vocab
    sd = torch.load(runs / "lm" / "lm.pt", weights_only=True)
    (tmp_path / "pre").mkdir()
    torch.save(sd, tmp_path / "pre" / "lstm_fwd.pth")
    (tmp_path / "pre" / "itos.pkl").write_bytes(pickle.dumps(itos[:10]))
    fails("finetune_lm", *TINY, "--csv", SAMPLE, "--pretrained", tmp_path / "pre", "--run-dir", tmp_path / "l",
          "--cache-dir", str(runs / "cache"), capsys=capsys, needles=[f"vocab has 10 tokens but the embedding has {len(itos)} rows"])


def test_resume_with_a_broken_or_foreign_checkpoint(runs, tmp_path, capsys):
    run = tmp_path / "lm"
    args = [*TINY, "--csv", str(SAMPLE), "--cache-dir", str(runs / "cache"), "--lm-docs", "16", "--epochs", "1",
            "--n-samples", "0", "--run-dir", str(run)]
    assert main("finetune_lm", *args, capsys=capsys)[0] == 0
    (run / "lm.pt").unlink()  # as if killed before the end, with ...
    shutil.copy(runs / "clas" / "classifier.pt", run / "last.pt")  # ... a checkpoint of another model
    fails("finetune_lm", "--resume", run, capsys=capsys, needles=[f"{run / 'last.pt'} is not an awdlstm checkpoint"])
    torch.save({"model": torch.load(runs / "clas" / "classifier.pt", weights_only=True)}, run / "last.pt")
    fails("finetune_lm", "--resume", run, capsys=capsys, needles=[f"{run / 'last.pt'} does not fit LanguageModel"])
    learn = Learner(TinyLM(), lm_batches(2), cfg=TrainConfig(progress=False, precision="fp32"), device="cpu")
    learn.save(run / "last.pt")
    flip_a_weight(run / "last.pt", learn.model.encoder.weight.detach())
    fails("finetune_lm", "--resume", run, capsys=capsys,
          needles=[f"{run / 'last.pt'}: corrupted, the weights do not match the checksum saved with them"])
    (run / "last.pt").write_bytes(b"PK\x03\x04 not really a zip")
    fails("finetune_lm", "--resume", run, capsys=capsys, needles=[f"{run / 'last.pt'}: truncated or corrupted"])
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "recipe": {**cfg["recipe"], "no_such": 1}}))
    fails("finetune_lm", "--resume", run, capsys=capsys,
          needles=[f"{run / 'config.json'}: edited or corrupted, its contents do not match the checksum saved in it"])
    cfg.pop("content_sha256")  # a config.json without a checksum (written by hand) is read, and checked
    (run / "config.json").write_text(json.dumps({**cfg, "recipe": {**cfg["recipe"], "no_such": 1}}))
    fails("finetune_lm", "--resume", run, capsys=capsys, needles=["recipe fields this version does not know: ['no_such']"])


# ---------------------------------------------------------------- downloads (served from localhost)

def test_pretrained_download_failures(runs, tmp_path, capsys, monkeypatch, server):
    """--pretrained wt103: a checksum mismatch, a connection cut half-way, an archive escaping its folder."""
    monkeypatch.setenv("AWDLSTM_CACHE", str(tmp_path / "cache"))
    args = [*TINY, "--csv", str(SAMPLE), "--pretrained", "wt103", "--run-dir", str(tmp_path / "out")]
    noise = np.random.default_rng(0).bytes(20_000)  # incompressible: the archive is > 1,000 bytes
    data = make_tgz({"wt103-fwd/lstm_fwd.pth": noise, "wt103-fwd/itos_wt103.pkl": b"i"})
    server.files["/wt103-fwd.tgz"] = data
    url = f"{server.url}/wt103-fwd.tgz"

    monkeypatch.setattr(download, "WT103_FWD", download.Archive("wt103-fwd.tgz", (url,), "wt103-fwd", len(data),
                                                                 sha256="0" * 64))
    fails("finetune_lm", *args, capsys=capsys, needles=["--pretrained wt103: ", url, "sha256 is",
                                                        f"expected {'0' * 64}; the file was deleted"])
    assert not list((tmp_path / "cache").rglob("*.tgz*"))

    monkeypatch.setattr(download, "WT103_FWD", download.Archive("wt103-fwd.tgz", (url,), "wt103-fwd", len(data),
                                                                 sha256=hashlib.sha256(data).hexdigest()))
    server.cut["/wt103-fwd.tgz"] = 1000
    fails("finetune_lm", *args, capsys=capsys, needles=["--pretrained wt103: ", "could not download wt103-fwd.tgz",
                                                        "connection closed after 1,000 of"])
    assert (tmp_path / "cache" / "archives" / "wt103-fwd.tgz.part").stat().st_size == 1000  # kept for resuming

    evil = make_tgz({"../evil.txt": b"x"})
    server.files["/evil.tgz"] = evil
    monkeypatch.setattr(download, "WT103_FWD", download.Archive("evil.tgz", (f"{server.url}/evil.tgz",), "wt103-fwd"))
    fails("finetune_lm", *args, capsys=capsys, needles=["--pretrained wt103: ", "archive member '../evil.txt'"])
    assert not (tmp_path / "cache" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


# ---------------------------------------------------------------- a diverging run

def test_non_finite_loss_stops_with_the_last_good_checkpoint(runs, tmp_path, capsys):
    run = tmp_path / "lm"
    with pytest.warns(UserWarning, match="non-finite loss"):
        msg = fails("finetune_lm", *TINY, "--csv", SAMPLE, "--cache-dir", runs / "cache", "--lm-docs", "16",
                    "--epochs", "2", "--lr", "1e30", "--n-samples", "0", "--run-dir", run, capsys=capsys,
                    needles=["non-finite", f"Last good checkpoint: {run / 'last.pt'}"])
    assert "training stopped" in msg
    ckpt = load_checkpoint(run / "last.pt")  # the frozen epoch, before the lr of 1e30
    assert ckpt["fit"]["fit"] == 1 and all(torch.isfinite(t).all() for t in ckpt["model"].values())
    assert not (run / "lm.pt").exists()


def test_a_refused_file_leaves_the_model_as_it_was(runs, tmp_path):
    model, itos = load_model(runs / "clas" / "classifier.pt")
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.zero_()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    enc = shutil.copy(runs / "lm" / "encoder.pt", tmp_path / "encoder.pt")
    shutil.copy(runs / "lm" / "encoder.json", tmp_path / "encoder.json")
    flip_a_weight(enc, torch.load(enc, weights_only=True)["encoder.weight"])
    with pytest.raises(ValueError, match="corrupted, the weights do not match the checksum"):
        load_encoder(model, enc, itos)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing was copied
    load_encoder(model, runs / "lm" / "encoder.pt", itos)  # the good file loads
    assert model.encoder.module.encoder.weight.abs().sum() > 0


# ---------------------------------------------------------------- run folders (awdlstm/runs.py)

def test_a_run_folder_belongs_to_one_run(runs, tmp_path, capsys):
    """A second run into a folder held by a live run, into another stage's folder, or over a finished run is
    refused; a dead run's lock is taken over."""
    import os
    import subprocess
    import sys

    lm = runs / "lm"
    clas_args = [*TINY, "--csv", SAMPLE, "--cache-dir", str(runs / "cache"), "--epochs", "1,0,0,0",
                 "--train-docs", "16", "--valid-docs", "8"]
    before = (lm / "config.json").read_text()
    fails("train_classifier", *clas_args, "--encoder", lm, "--run-dir", lm, capsys=capsys,
          needles=[f"the classifier's run folder {lm} is the language model's"])
    fails("train_classifier", *clas_args, "--encoder", lm, "--run-dir", runs / "clas", capsys=capsys,
          needles=[f"run folder {runs / 'clas'} holds a run already; give a new folder (or --resume it)"])
    fails("finetune_lm", *TINY, "--csv", SAMPLE, "--run-dir", runs / "clas", capsys=capsys,
          needles=[f"run folder {runs / 'clas'} holds a train_classifier run"])
    assert (lm / "config.json").read_text() == before  # nothing of the language model's run was touched

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / "busy"
        busy.mkdir()
        (busy / ".lock").write_text(str(sleeper.pid))  # a live run holds it
        fails("train_classifier", *clas_args, "--encoder", lm, "--run-dir", busy, capsys=capsys,
              needles=[f"run folder {busy} is in use by another run (process {sleeper.pid})"])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert main("train_classifier", *clas_args, "--encoder", lm, "--run-dir", busy)[0] == 0  # its owner died
    assert not (busy / ".lock").exists() and (busy / "classifier.pt").is_file()
    assert os.listdir(busy)


def test_resume_refuses_changed_data(runs, tmp_path, capsys):
    """--resume after the training CSV was edited stops before anything is overwritten."""
    data = tmp_path / "d.csv"
    shutil.copy(SAMPLE, data)
    run = tmp_path / "lm"
    assert main("finetune_lm", *TINY, "--csv", data, "--cache-dir", str(runs / "cache"), "--lm-docs", "16",
                "--n-samples", "0", "--run-dir", run)[0] == 0
    (run / "lm.pt").unlink()  # as if killed in the last epoch
    vocab = (run / "vocab.json").read_text()
    data.write_text(data.read_text(encoding="utf-8").replace("movie", "film"), encoding="utf-8")
    fails("finetune_lm", "--resume", run, capsys=capsys,
          needles=[f"--resume {run}: the data differ from the ones the run started from"])
    assert (run / "vocab.json").read_text() == vocab


def test_a_refused_run_leaves_no_folder(runs, tmp_path, capsys):
    """Bad input found before training leaves no empty run folder behind (an existing folder stays)."""
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    fails("finetune_lm", *TINY, "--csv", empty, "--run-dir", tmp_path / "new", capsys=capsys, needles=["no texts"])
    one = tmp_path / "one.csv"
    one.write_text("text,label\n" + "a fine film indeed,1\n" * 30)
    fails("train_classifier", *TINY, "--csv", one, "--encoder", runs / "lm", "--run-dir", tmp_path / "new2",
          capsys=capsys, needles=["at least two labels"])
    bad_vocab = tmp_path / "tiny.csv"
    bad_vocab.write_text("text,label\n" + "".join(f"word{i} film,{i % 2}\n" for i in range(40)))
    fails("train_classifier", *TINY, "--csv", bad_vocab, "--encoder", runs / "lm", "--valid-col", "nope",
          "--run-dir", tmp_path / "new3", capsys=capsys, needles=["missing column"])
    odd = tmp_path / "odd.csv"  # a class only the validation split has (data/labels.py)
    odd.write_text("text,label,v\n" + "".join(f"a good film {i},{'ab'[i % 2]},0\n" for i in range(20))
                   + "a strange film,c,1\n")
    fails("train_classifier", *TINY, "--csv", odd, "--valid-col", "v", "--encoder", runs / "lm", "--run-dir",
          tmp_path / "new4", "--cache-dir", str(runs / "cache"), capsys=capsys,
          needles=["too few documents to learn or to validate classes", "'c': 0 training and 1 validation document"])
    for name in ("new", "new2", "new3", "new4"):
        assert not (tmp_path / name).exists(), name
