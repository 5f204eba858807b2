"""Issue #16 against the real scripts (in-process, through their error guard, as test_bad_inputs.py): a damaged
tokenized-corpus cache entry is named and rebuilt, CSVs with a byte-order mark are read, blank or missing labels
are refused naming the file and line, every JSON a later stage reads is covered by a checksum, and a validation
class without training documents is explained."""
import csv
import json
import os
import shutil
import signal

import numpy as np
import pytest
from run_scripts import SAMPLE, TINY, fails, main

from awdlstm.tokenizers.corpus import TokenizedCorpus, tokenize_corpus

pytestmark = pytest.mark.usefixtures("no_plots")

LM = [*TINY, "--lm-docs", "16", "--frozen-epochs", "0", "--epochs", "0", "--n-samples", "0"]




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
    headers = [i for i in range(len(data)) if data.startswith(b"PK\x03\x04", i)]  # each member: zip + .npy header
    assert len(headers) == 5
    positions = sorted({*range(0, len(data), len(data) // 300), *(i for h in headers for i in range(h, h + 160, 2))})
    ids_at = data.find(corpus.ids.tobytes())
    in_ids = range(ids_at, ids_at + corpus.ids.nbytes)
    assert ids_at > 0 and sum(i in in_ids for i in positions) > 100
    for i in positions:
        path.write_bytes(flip(data, i))
        try:
            back = TokenizedCorpus.load(path, "k", len(texts))
        except ValueError as e:
            assert str(e).startswith(f"{path}: truncated or corrupted tokenized-corpus file ("), str(e)
        else:
            assert i not in in_ids and same_corpus(back, corpus), i  # every change in the ids is caught


# ---------------------------------------------------------------- 2, 3. CSVs and labels

@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    """A tiny language model (no training) whose encoder the classifier runs start from."""
    d = tmp_path_factory.mktemp("rel")
    assert main("finetune_lm", *LM, "--csv", SAMPLE, "--cache-dir", d / "cache", "--run-dir", d / "lm")[0] == 0
    return d


def clas_args(lm_run, tmp_path, *more):
    return [*TINY, "--encoder", lm_run / "lm", "--cache-dir", lm_run / "cache", "--epochs", "1,0,0,0",
            "--train-docs", "16", "--valid-docs", "8", "--run-dir", tmp_path / "clas", *more]


def test_a_spreadsheets_csv_utf8_with_a_byte_order_mark_is_read(lm_run, tmp_path, capsys):
    plain = rows()
    bom = write_csv(tmp_path / "bom.csv", plain, encoding="utf-8-sig")
    assert bom.read_bytes()[:7] == b"\xef\xbb\xbftext"
    cached = sorted((lm_run / "cache").glob("tokens-*.npz"))
    assert main("finetune_lm", *LM, "--csv", bom, "--cache-dir", lm_run / "cache", "--run-dir", tmp_path / "lm",
                capsys=capsys) == (0, "")
    assert sorted((lm_run / "cache").glob("tokens-*.npz")) == cached  # the same texts as the plain CSV's
    for name in ("lm.json", "vocab.json"):
        assert (tmp_path / "lm" / name).read_bytes() == (lm_run / "lm" / name).read_bytes()
    assert main("train_classifier", *clas_args(lm_run, tmp_path), "--csv", bom, capsys=capsys) == (0, "")
    assert json.loads((tmp_path / "clas" / "labels.json").read_text())["labels"] == ["0", "1"]
    # a .txt saved with a byte-order mark (Notepad) is read without it
    text = plain[0]["text"]
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "plain.txt").write_text(text, encoding="utf-8")
    outs = []
    for f in ("bom.txt", "plain.txt"):
        capsys.readouterr()
        assert main("predict", "--model", tmp_path / "clas", "--json", "--files", tmp_path / f)[0] == 0
        outs.append(json.loads(capsys.readouterr().out.strip()))
    assert outs[0] == outs[1] and outs[0]["text"] == text


def two_labels(n: int = 15) -> list[dict]:
    """`n` texts of each label, interleaved, columns text and label."""
    neg, pos = ([{"text": r["text"], "label": r["label"]} for r in rows() if r["label"] == lab][:n] for lab in "01")
    return [r for pair in zip(neg, pos, strict=True) for r in pair]


def write_raw(path, header, records):
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *records])
    return path


def test_blank_or_missing_labels_are_refused_naming_file_and_row(lm_run, tmp_path, capsys):
    good = two_labels()
    args = clas_args(lm_run, tmp_path)
    blank = [dict(r) for r in good]
    blank[4]["label"] = ""
    blank[9]["label"] = "  "
    path = write_csv(tmp_path / "blank.csv", blank)
    fails("train_classifier", *args, "--csv", path, capsys=capsys,
          needles=[f"{path}: row 6 has a blank 'label' field: every text of a classifier needs a label",
                   "(and 1 more bad row)"])
    records = [[r["text"], r["label"]] for r in good]
    short = write_raw(tmp_path / "short.csv", ["text", "label"], records[:2] + [records[2][:1]] + records[3:])
    fails("train_classifier", *args, "--csv", short, capsys=capsys, needles=[f"{short}: row 4 has no 'label' field"])
    extra = write_raw(tmp_path / "extra.csv", ["text", "label"], [records[0], ["a comma", " unquoted", "1"], *records[1:]])
    fails("train_classifier", *args, "--csv", extra, capsys=capsys,
          needles=[f"{extra}: row 3 has 3 fields, the header 2 (a comma in an unquoted text?)"])
    multi = write_raw(tmp_path / "multi.csv", ["text", "label"], [["two\nlines", "0"], ["", ""], *records])
    fails("train_classifier", *args, "--csv", multi, capsys=capsys,
          needles=[f"{multi}: row 3 (line 4) has a blank 'label' field"])  # the row a spreadsheet shows, and the line
    # the language model needs no labels: a blank one is no error there
    assert main("finetune_lm", *LM, "--csv", path, "--cache-dir", lm_run / "cache", "--run-dir", tmp_path / "lm",
                capsys=capsys) == (0, "")
    # --valid-col values are checked too
    flagged = [{**r, "is_valid": "ture" if i == 7 else ("1" if i % 4 < 2 else "")} for i, r in enumerate(good)]
    path = write_csv(tmp_path / "valid.csv", flagged)
    fails("train_classifier", *args, "--csv", path, "--valid-col", "is_valid", capsys=capsys,
          needles=[f"{path}: row 9: 'is_valid' is 'ture'; expected one of"])


def test_a_text_outside_the_class_folders_is_refused(lm_run, tmp_path, capsys):
    for label, n in [("pos", 3), ("neg", 3)]:
        (tmp_path / "reviews" / label).mkdir(parents=True)
        for i in range(n):
            (tmp_path / "reviews" / label / f"{i}.txt").write_text(f"a {label} review number {i}")
    (tmp_path / "reviews" / "stray.txt").write_text("which class am I?")
    fails("train_classifier", *clas_args(lm_run, tmp_path), "--folder", tmp_path / "reviews", capsys=capsys,
          needles=[f"{tmp_path / 'reviews' / 'stray.txt'}: a text outside the class folders",
                   "its label would be 'reviews'"])
    assert main("finetune_lm", *LM, "--folder", tmp_path / "reviews", "--cache-dir", lm_run / "cache",
                "--run-dir", tmp_path / "lm", capsys=capsys) == (0, "")  # the language model reads it


# ---------------------------------------------------------------- 4. every JSON a later stage reads is checksummed

@pytest.fixture(scope="module")
def clas_run(lm_run):
    d = lm_run / "clas"
    assert main("train_classifier", *clas_args(lm_run, lm_run, "--csv", SAMPLE))[0] == 0
    return d


def edit_json(path, change):
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj, indent=1))


def predictions(run, capsys, text="a fine film, well acted and moving"):
    capsys.readouterr()
    assert main("predict", "--model", run, "--json", text)[0] == 0
    return json.loads(capsys.readouterr().out)


def test_the_vocab_labels_and_config_inside_the_json_files_are_checksummed(lm_run, clas_run, tmp_path, capsys):
    before = predictions(clas_run, capsys)
    clas = shutil.copytree(clas_run, tmp_path / "clas")
    meta = json.loads((clas / "classifier.json").read_text())
    token = next(t for t in meta["vocab"] if t.isalpha() and len(t) > 3)

    def rename(obj):
        obj["vocab"][obj["vocab"].index(token)] = token.upper()
    edit_json(clas / "classifier.json", rename)  # one token renamed: predictions would silently change
    fails("predict", "--model", clas, "good", capsys=capsys,
          needles=[f"{clas / 'classifier.json'}: edited or corrupted, its contents do not match the checksum"])
    shutil.copy(clas_run / "classifier.json", clas / "classifier.json")
    edit_json(clas / "labels.json", lambda o: o["labels"].reverse())  # neg <-> pos
    fails("predict", "--model", clas, "good", capsys=capsys,
          needles=[f"{clas / 'labels.json'}: edited or corrupted, its contents do not match the checksum"])
    shutil.copy(clas_run / "labels.json", clas / "labels.json")
    edit_json(clas / "classifier.json", lambda o: o["classifier"].update(max_len=o["classifier"]["max_len"] * 2))
    fails("predict", "--model", clas, "good", capsys=capsys, needles=[f"{clas / 'classifier.json'}: edited or corrupted"])
    # the contents are checksummed, not the bytes: the same JSON written another way still loads
    original = json.loads((clas_run / "classifier.json").read_text())
    (clas / "classifier.json").write_text(json.dumps(original, indent=4, sort_keys=True, ensure_ascii=False))
    assert (clas / "classifier.json").read_bytes() != (clas_run / "classifier.json").read_bytes()
    assert predictions(clas, capsys) == before
    # a file written before the checksum existed (no "content_sha256") is read as it is
    for name in ("classifier.json", "labels.json"):
        edit_json(clas / name, lambda o: o.pop("content_sha256"))
    assert predictions(clas, capsys) == before

    lm = shutil.copytree(lm_run / "lm", tmp_path / "lm")
    edit_json(lm / "encoder.json", rename)
    fails("train_classifier", *clas_args(lm_run, tmp_path, "--csv", SAMPLE, "--encoder", lm), capsys=capsys,
          needles=[f"{lm / 'encoder.json'}: edited or corrupted"])
    edit_json(lm / "lm.json", lambda o: o["config"].update(n_layers=o["config"]["n_layers"] + 1))
    fails("generate", "--model", lm, capsys=capsys, needles=[f"{lm / 'lm.json'}: edited or corrupted"])


# ---------------------------------------------------------------- 5. a signal while tokenizing on several cores

def ctrl_c_as_in_a_terminal() -> None:
    """In the child before it starts: SIGINT back to its default, so that Python raises KeyboardInterrupt on it as
    in a terminal (a background job, as under CI, inherits SIGINT ignored, and Python then leaves it so)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def read_until(fd, pattern, timeout: float) -> bytes:
    """What the process writes to `fd` until `pattern` matches it (or it closes, or `timeout` passes)."""
    import os
    import re
    import select
    import time

    out, end = b"", time.time() + timeout
    while time.time() < end and (pattern is None or not re.search(pattern, out)):
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    return out


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) < 2,
                    reason="tokenizing runs in one process on one core")
@pytest.mark.parametrize("sig, to_group", [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGKILL, False)],
                         ids=["SIGTERM to the script", "Ctrl-C to its process group", "SIGKILL to the script"])
def test_a_signal_while_tokenizing_ends_the_workers_quietly(tmp_path, sig, to_group):
    """The workers end without a word (no KeyboardInterrupt or BrokenPipeError tracebacks), none is left
    behind, nothing is cached, and the script says once that it was interrupted."""
    import random
    import subprocess
    import sys
    import time

    from run_scripts import ROOT, SCRIPTS

    words = " ".join(r["text"] for r in rows()).split()
    rng = random.Random(0)  # numbered words: chunks seen once, so tokenizing takes seconds
    texts = [" ".join(w + str(rng.randrange(10**6)) if rng.random() < 0.5 else w for w in rng.choices(words, k=60))
             for _ in range(5000)]
    path = write_csv(tmp_path / "big.csv", [{"text": t, "label": i % 2} for i, t in enumerate(texts)])
    cmd = [sys.executable, str(SCRIPTS / "finetune_lm.py"), "--preset", "tiny", "--threads", "1",
           "--csv", str(path), "--cache-dir", str(tmp_path / "cache"), "--run-dir", str(tmp_path / "run"),
           "--n-samples", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "AWDLSTM_POOL_MIN_CHARS": "0"},  # workers
                            preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        err = read_until(proc.stderr.fileno(), rb"tokenizing:\s+\d+%\|[^|]*\|\s*[1-9]\d*/5000", 120)
        assert b"tokenizing" in err, err.decode(errors="replace")  # a batch is done: the workers are busy
        os.killpg(proc.pid, sig) if to_group else os.kill(proc.pid, sig)
        err += read_until(proc.stderr.fileno(), None, 60)  # to the end: every writer (the workers too) is gone
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = err.decode(errors="replace")
    assert "Traceback" not in text and "Error" not in text, text
    lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip() and "tokenizing:" not in line]
    if sig == signal.SIGKILL:  # Python's resource tracker removes the pool's semaphores the killed script left, and
        # says so (workers not forked, tokenizers/corpus.py worker_context, register them): a note, not an error
        lines = [line for line in lines if "resource_tracker" not in line and "warnings.warn(" not in line]
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL and lines == [], text
    else:
        what = " terminated (SIGTERM) while tokenizing 5,000 texts; nothing was cached" if sig == signal.SIGTERM else ""
        assert code == 130 and lines == [f"finetune_lm.py: interrupted.{what}"], text
    for _ in range(50):  # the workers are gone (reaped by their new parent once the script died)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"processes of group {proc.pid} are still running")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


# ---------------------------------------------------------------- 6. errors that say what to change

def test_a_validation_class_without_training_documents_is_explained(lm_run, tmp_path, capsys):
    docs = [{**r, "v": "1" if i % 8 < 2 else ""} for i, r in enumerate(two_labels(20))]
    docs += [{"text": "meh", "label": "neutral", "v": "1"}] * 3  # a class only the validation split has
    path = write_csv(tmp_path / "classes.csv", docs)
    fails("train_classifier", *clas_args(lm_run, tmp_path, "--csv", path, "--valid-col", "v", "--train-docs", "0",
                                         "--valid-docs", "0"), capsys=capsys,
          needles=[f"--csv {path}: too few documents to learn or to validate class 'neutral': 0 training and 3 "
                   f"validation documents, e.g. {path}:42, {path}:43, {path}:44. Every class needs at least 5 training",
                   "change which rows validate in the --valid-col column"])  # data/labels.py, tests/test_labels.py


def test_the_label_error_names_its_source():
    from awdlstm.data import ClasLoader, LabelVocab

    labels = LabelVocab.build(["neg", "pos", "pos"])
    with pytest.raises(ValueError) as e:
        ClasLoader([[2, 3], [4], [5, 6, 7]], ["pos", "meh", "meh"], bs=2, label_vocab=labels,
                   source="--csv reviews.csv (validation)")
    assert str(e.value).startswith("--csv reviews.csv (validation): 2 of these 3 documents have a label that is not "
                                   "a class of the classifier: 'meh' (2 documents). The classes ['neg', 'pos']")
    assert labels.encode(["pos", "neg"]) == [1, 0]
