"""The bag-of-n-grams baseline: n-gram features, NB log-count ratios, logistic regression, the script."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from awdlstm.baseline import NBLogistic, nb_ratios, ngram_features, ngram_keys, rows
from awdlstm.bow import load_bow
from awdlstm.predict import ensemble_accuracy

ROOT = Path(__file__).resolve().parent.parent


def corpus(docs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in docs], out=offsets[1:])
    return np.array([t for d in docs for t in d], dtype=np.int32), offsets


def test_ngrams_stay_inside_documents_and_lengths_never_collide():
    ids, offsets = corpus([[0, 1, 2], [3], [1, 2]])
    docs, keys = ngram_keys(ids, offsets, 3)
    base = 3 + 2
    want = {(0, 1), (0, 2), (0, 3), (1, 4), (2, 2), (2, 3),        # unigrams: id + 1
            (0, 1 * base + 2), (0, 2 * base + 3), (2, 2 * base + 3),  # bigrams, none across documents
            (0, (1 * base + 2) * base + 3)}                           # the one trigram
    assert sorted(zip(docs.tolist(), keys.tolist())) == sorted(want)
    # [0] as a unigram (key 1) differs from any bigram or trigram
    assert len(set(keys.tolist())) == 7


def test_features_are_binarized_and_keep_only_ngrams_seen_in_training():
    ids, offsets = corpus([[0, 0, 1], [1, 2], [3, 0]])  # doc 2 is "validation": token 3 and (3, 0) are unseen
    f = ngram_features(ids, offsets, 2, train=np.array([0, 1]))
    # columns in key order: 0, 1, 2, (0,0), (0,1), (1,2)
    assert f.n_features == 6
    assert f.x.to_dense().tolist() == [[1, 1, 0, 1, 1, 0], [0, 1, 1, 0, 0, 1], [1, 0, 0, 0, 0, 0]]
    f2 = ngram_features(ids, offsets, 2, train=np.array([0, 1, 2]), min_df=2)
    assert f2.n_features == 2  # only tokens 0 and 1 are in two documents
    assert rows(f.x, np.array([2, 0])).to_dense().tolist() == [[1, 0, 0, 0, 0, 0], [1, 1, 0, 1, 1, 0]]


def test_nb_ratio_by_hand_on_three_documents():
    # features a, b, c; doc 0 (pos) has a, b; doc 1 (pos) has a; doc 2 (neg) has b, c
    x = torch.tensor([[1.0, 1, 0], [1, 0, 0], [0, 1, 1]]).to_sparse_csr()
    y = torch.tensor([1, 1, 0])
    p = np.array([1 + 2, 1 + 1, 1 + 0])  # alpha 1 + counts in positive documents
    q = np.array([1 + 0, 1 + 1, 1 + 1])
    want = np.log((p / p.sum()) / (q / q.sum()))
    assert np.allclose(nb_ratios(x, y, alpha=1.0).numpy(), want, atol=1e-6)
    assert math.isclose(want[0], math.log((3 / 6) / (1 / 5)))
    assert nb_ratios(x, y)[0] > 0 > nb_ratios(x, y)[2]


def toy_problem(seed: int, n: int = 400):
    """Documents of 20 random tokens from 0-49 plus a few 'positive' (50-54) or 'negative' (55-59) words."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    docs = [list(rng.integers(0, 50, 20)) + list(rng.integers(50, 55, 2) if lab else rng.integers(55, 60, 2))
            for lab in y]
    for d in docs:
        rng.shuffle(d)
    ids, offsets = corpus(docs)
    return ids, offsets, torch.from_numpy(y)


def test_separable_toy_problem_is_learned():
    ids, offsets, y = toy_problem(0)
    train, valid = np.arange(300), np.arange(300, 400)
    x = ngram_features(ids, offsets, 2, train).x
    model = NBLogistic.fit(rows(x, train), y[train], l2=1e-3)
    p = model.predict_proba(rows(x, valid))
    assert ((p > 0.5).long() == y[valid]).float().mean().item() == 1.0
    assert model.w[:-1].abs().max() > 0.1  # it learned something, not the prior


def test_fit_is_deterministic():
    ids, offsets, y = toy_problem(1, 200)
    x = ngram_features(ids, offsets, 3, np.arange(200)).x
    a = NBLogistic.fit(x, y, l2=1e-3)
    b = NBLogistic.fit(x, y, l2=1e-3)
    assert torch.equal(a.w, b.w) and torch.equal(a.r, b.r)


def test_script_on_a_csv(tmp_path):
    ids, offsets, y = toy_problem(2, 120)
    words = [f"w{i}" for i in range(60)]
    lines = ["text,label,is_valid"]
    for i in range(120):
        text = " ".join(words[t] for t in ids[offsets[i]:offsets[i + 1]])
        lines.append(f"{text},{'pos' if y[i] else 'neg'},{i >= 90}")
    (tmp_path / "toy.csv").write_text("\n".join(lines) + "\n")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "baseline.py"), "--csv", str(tmp_path / "toy.csv"),
                          "--cache-dir", str(tmp_path / "cache"), "--l2", "1e-3", "--max-tokens", "-10",
                          "--run-dir", str(tmp_path / "bow")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    acc = float(out.stdout.split("validation accuracy: ")[1].split()[0])
    assert acc >= 0.9 and "90 train / 30 valid" in out.stdout
    # its run folder: an ensemble member whose saved predictions give the accuracy printed
    assert abs(ensemble_accuracy([tmp_path / "bow"])["ensemble"] - acc) < 1e-4
    member = load_bow(tmp_path / "bow")
    assert member.max_tokens == -10 and member.labels.itos == ["neg", "pos"]
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "baseline.py"), "--csv", str(tmp_path / "no.csv")],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and "no.csv" in bad.stderr and "Traceback" not in bad.stderr
