"""Prediction over an input of any length (awdlstm/predict_stream.py, scripts/predict.py --lines / stdin): block by
block in bounded memory, in input order, and an interrupted run leaves complete output lines only."""
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from run_scripts import ROOT, main, train_tiny_classifier

from awdlstm.predict import load_classifier, predict_texts
from awdlstm.predict_stream import blocks, predict_blocks, read_lines, write_predictions

pytestmark = pytest.mark.usefixtures("no_plots")


@pytest.fixture(scope="module")
def clas(tmp_path_factory):
    return train_tiny_classifier(tmp_path_factory.mktemp("stream"))


def mixed_texts(n: int, seed: int = 0) -> list[str]:
    """`n` texts of 1 to 120 words, lengths shuffled so that every block mixes short and long ones."""
    rng = np.random.default_rng(seed)
    words = "a good bad film movie plot actor dull great boring loved hated it was the and".split()
    return [" ".join(rng.choice(words, int(k))) + f" {i}" for i, k in enumerate(rng.integers(1, 120, n))]


def test_blocks_keep_input_order_across_boundaries(clas):
    """Blocks of 7 over 40 texts of mixed lengths (sorted by length inside each block): the same labels and
    probabilities, in input order, as predicting all of them at once."""
    models = [load_classifier(clas)]
    texts = mixed_texts(40)
    labels, probs = predict_texts(models, texts, bs=4)
    got_texts, got_labels, got_probs = [], [], []
    for chunk, lab, p in predict_blocks(models, texts, block=7, bs=4):
        assert len(chunk) == (7 if len(got_texts) < 35 else 5)
        got_texts += chunk
        got_labels += lab
        got_probs.append(p)
    assert got_texts == texts and got_labels == labels
    np.testing.assert_allclose(np.concatenate(got_probs), probs.numpy(), atol=1e-6)
    assert len(set(np.round(probs[:, 0].numpy(), 6))) > 30  # the texts really differ


def test_a_generator_is_never_materialised(clas):
    """An endless generator: each block is classified once `block` texts were taken, no more."""
    taken = 0

    def endless():
        nonlocal taken
        for i in itertools.count():
            taken += 1
            yield f"text number {i} is {'good' if i % 2 else 'bad'}"

    stream = predict_blocks([load_classifier(clas)], endless(), block=16)
    for k in range(1, 4):
        chunk, _, _ = next(stream)
        assert taken == 16 * k and chunk[0] == f"text number {16 * (k - 1)} is bad"
    assert list(itertools.islice(blocks(iter(range(10)), 4), 5)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_write_predictions_writes_whole_blocks_in_input_order(clas):
    models = [load_classifier(clas)]
    texts = mixed_texts(23, seed=1)

    class Out(io.StringIO):
        writes = []

        def write(self, s):
            self.writes.append(s)
            return super().write(s)

    out = Out()
    assert write_predictions(models, iter(texts), out, as_json=True, block=10, progress=False) == 23
    assert [w.count("\n") for w in out.writes] == [10, 10, 3] and all(w.endswith("\n") for w in out.writes)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["text"] for r in rows] == texts
    _, probs = predict_texts(models, texts)
    np.testing.assert_allclose([list(r["probs"].values()) for r in rows], probs.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="no texts"):
        write_predictions(models, iter([]), io.StringIO(), progress=False)


def test_read_lines_skips_blanks_and_names_a_bad_line():
    assert list(read_lines(io.BytesIO(b"\xef\xbb\xbfone\r\n\n  \ntwo\nthree"))) == ["one", "two", "three"]
    assert list(read_lines(io.StringIO("a\n\nb\n"))) == ["a", "b"]
    with pytest.raises(ValueError, match=r"--lines x.txt: line 3 is not UTF-8 text"):
        list(read_lines(io.BytesIO(b"ok\nfine\n\xff no\n"), "--lines x.txt"))


def test_stdin_and_lines_give_the_same_output(clas, tmp_path, capsys, monkeypatch):
    texts = mixed_texts(30, seed=2)
    data = ("\n".join(texts[:10]) + "\n\n" + "\n".join(texts[10:]) + "\n").encode()  # a blank line is skipped
    (tmp_path / "in.txt").write_bytes(data)
    code, err = main("predict", "--model", clas, "--lines", tmp_path / "in.txt", "--block", "8", "--threads", "1")
    from_file = capsys.readouterr()
    assert code == 0 and from_file.err.startswith("30 texts, 1 model(s), "), from_file.err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert main("predict", "--model", clas, "--block", "5", "--threads", "1")[0] == 0
    from_stdin = capsys.readouterr().out
    assert from_stdin == from_file.out and len(from_stdin.splitlines()) == 30
    assert [line.split("\t")[-1] for line in from_stdin.splitlines()] == [" ".join(t.split())[:60] for t in texts]
    proc = subprocess.run([sys.executable, "scripts/predict.py", "--model", str(clas), "--threads", "1"], input=data,
                          capture_output=True, cwd=ROOT, timeout=120)  # a real pipe
    assert proc.returncode == 0 and proc.stdout.decode() == from_file.out, proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_leaves_whole_lines(clas, tmp_path, sig):
    """Killed while it writes (blocks of 50 texts, output to a file): every line in the file is a complete JSON
    line of the right text, in input order; Ctrl-C and SIGTERM end it at a block boundary."""
    texts = mixed_texts(20_000, seed=3)
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.jsonl"
    with open(out, "wb") as f:
        proc = subprocess.Popen([sys.executable, "scripts/predict.py", "--model", str(clas), "--lines",
                                 str(tmp_path / "in.txt"), "--json", "--block", "50", "--threads", "1"],
                                stdout=f, stderr=subprocess.PIPE, cwd=ROOT,
                                # a shell's background job (nohup CMD &) ignores Ctrl-C, and Python keeps an
                                # inherited ignore: give the child the terminal's default, as a user's shell does
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 60
        while out.stat().st_size < 20_000 and time.time() < deadline:  # a few blocks are out
            time.sleep(0.01)
        time.sleep(0.137)  # somewhere inside the next blocks
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    data = out.read_bytes()
    assert data.endswith(b"\n") and proc.returncode != 0
    rows = [json.loads(line) for line in data.decode().splitlines()]
    assert 0 < len(rows) < len(texts) and [r["text"] for r in rows] == texts[:len(rows)]
    if sig != signal.SIGKILL:
        assert len(rows) % 50 == 0  # the block being written was finished, then it stopped
        assert proc.returncode == 130 and err.startswith(b"predict.py: interrupted."), err  # SIGTERM as Ctrl-C
