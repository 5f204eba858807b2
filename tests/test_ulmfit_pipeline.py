"""One command per preset (scripts/ulmfit.py, awdlstm/pipeline.py) end to end at the `tiny` preset: it measures,
prints and records the plan, trains both directions as two processes, the bag-of-words member, and prints each
member's accuracy, the final (ULMFiT) and the ensemble (with bag-of-words) lines; the plan replays from its
config.json; the bag-of-words run folder loads without unpickling and joins scripts/ensemble.py."""
import csv
import json
import re

import numpy as np
import pytest
import torch
from run_scripts import SAMPLE, fails, main

from awdlstm.bow import load_bow, load_member
from awdlstm.predict import ensemble_accuracy, load_classifier, predict_texts
from awdlstm.predict_stream import predict_blocks

pytestmark = pytest.mark.usefixtures("no_plots")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ulmfit")
    code, _ = main("ulmfit", "--preset", "tiny", "--quiet", "--seed", "0", "--csv", SAMPLE, "--cache-dir",
                   d / "cache", "--run-dir", d / "run")
    assert code == 0
    return d


def test_prints_plan_and_every_member(run):
    log = (run / "run" / "log.txt").read_text()
    assert "plan for --preset tiny in 2 minutes (forward + backward side by side" in log
    assert "repeat it: --preset tiny --minutes 2 --directions 2 --lm-epochs 1" in log
    config = json.loads((run / "run" / "config.json").read_text())
    plan, res = config["plan"], config["results"]
    assert plan["preset"] == "tiny" and plan["expected_s"]["total"] > 0 and config["speeds"]["jobs"] == 2
    members = sorted(res["members"])
    assert members == ["ULMFiT backward", "ULMFiT forward", "bag-of-words"]
    runs = [run / "run" / d for d in ("clas-fwd", "clas-bwd", "bow")]
    ens = ensemble_accuracy(runs)
    final = float(re.search(r"^final validation accuracy: ([0-9.]+)", log, re.M).group(1))
    both = float(re.search(r"^ensemble validation accuracy: ([0-9.]+)", log, re.M).group(1))
    assert final == pytest.approx(ensemble_accuracy(runs[:2])["ensemble"], abs=1e-4)
    assert both == pytest.approx(ens["ensemble"], abs=1e-4)
    assert f"predict.py --model {runs[0]} --model {runs[1]} --model {runs[2]} TEXT" in log
    for d in ("lm-fwd", "lm-bwd", "clas-fwd", "clas-bwd"):  # each stage's config records the plan
        assert json.loads((run / "run" / d / "config.json").read_text())["plan"]["read_len"] == plan["read_len"]
    assert json.loads((run / "run" / "lm-bwd" / "config.json").read_text())["backwards"] is True


def test_bow_member_round_trip(run):
    bow = load_bow(run / "run" / "bow")
    preds = json.loads((run / "run" / "bow" / "valid_preds.json").read_text())
    fwd = json.loads((run / "run" / "clas-fwd" / "valid_preds.json").read_text())
    assert preds["doc_index"] == fwd["doc_index"] and preds["targets"] == fwd["targets"]

    with open(SAMPLE, newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    probs = bow.predict_texts([texts[i] for i in preds["doc_index"]])
    assert torch.allclose(probs, torch.tensor(preds["probs"]), atol=1e-5)  # the saved model predicts as fitted
    assert np.all(np.diff(bow.keys) > 0) and bow.labels.itos == load_classifier(run / "run" / "clas-fwd").labels.itos
    # new texts through the members at once, equal weights: the mean of each member's own probabilities
    some = [texts[i] for i in preds["doc_index"][:7]]
    members = [load_member(run / "run" / "clas-fwd"), load_member(run / "run" / "bow")]
    assert isinstance(members[1], type(bow)) and not isinstance(members[0], type(bow))
    got = list(predict_blocks(members, some, block=3))  # blocks of 3, 3, 1
    assert [len(c) for c, _, _ in got] == [3, 3, 1] and [t for c, _, _ in got for t in c] == some
    mean = torch.cat([p for _, _, p in got])
    alone = predict_texts([members[0]], some)[1]
    assert torch.allclose(mean, (alone + bow.predict_texts(some)) / 2, atol=1e-6)
    itos = bow.labels.itos
    assert [lab for _, labels, _ in got for lab in labels] == [itos[i] for i in mean.argmax(-1).tolist()]


def test_predict_script_takes_the_bow_member(run, tmp_path, capsys):
    """scripts/predict.py --model CLAS --model BOW: one line per text, the mean of the two members' probabilities."""
    with open(SAMPLE, newline="", encoding="utf-8") as f:
        texts = [" ".join(row["text"].split()) for row, _ in zip(csv.DictReader(f), range(9))]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    clas, bow = run / "run" / "clas-fwd", run / "run" / "bow"
    capsys.readouterr()
    code, _ = main("predict", "--model", clas, "--model", bow, "--lines", tmp_path / "in.txt", "--json",
                   "--block", "4", "--threads", "1")
    out = capsys.readouterr().out
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    members = [load_member(clas), load_member(bow)]
    want = (predict_texts(members[:1], texts)[1] + members[1].predict_texts(texts)) / 2
    itos = members[1].labels.itos
    assert [r["text"] for r in rows] == texts
    got = torch.tensor([[r["probs"][c] for c in itos] for r in rows])
    assert torch.allclose(got, want, atol=1e-6)
    assert [r["label"] for r in rows] == [itos[i] for i in want.argmax(-1).tolist()]
    fails("predict", "--model", run / "run", "only words", capsys=capsys, needles=["classifier.pt"])  # neither kind


def test_replays_a_recorded_plan(run, capsys):
    code, _ = main("ulmfit", "--plan", run / "run" / "config.json", "--quiet", "--seed", "0", "--csv", SAMPLE,
                   "--cache-dir", run / "cache", "--run-dir", run / "again", "--directions", "1", "--no-bow")
    out = capsys.readouterr().out
    assert code == 0 and "the plan recorded in" in out and "ensemble validation accuracy" not in out
    first = json.loads((run / "run" / "config.json").read_text())["plan"]
    again = json.loads((run / "again" / "config.json").read_text())["plan"]
    assert {**first, "directions": 1, "bow": False} == again
    assert (run / "again" / "clas-fwd" / "classifier.pt").is_file() and not (run / "again" / "clas-bwd").exists()


def test_bad_flags_are_one_line_errors(tmp_path, capsys):
    code, err = main("ulmfit", "--clas-epochs", "1,1", capsys=capsys)
    assert code == 2 and "--clas-epochs needs 4 values" in err
    fails("ulmfit", "--plan", tmp_path / "nowhere", "--run-dir", tmp_path / "r", capsys=capsys,
          needles=["run folder", "nowhere", "does not exist"])
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "config.json").write_text('{"stage": "finetune_lm"}')
    fails("ulmfit", "--plan", tmp_path / "lm" / "config.json", "--run-dir", tmp_path / "r", capsys=capsys,
          needles=["records no plan"])
    code, err = main("ulmfit", "--preset", "gpu", capsys=capsys)
    assert code == 2 and "invalid choice" in err
