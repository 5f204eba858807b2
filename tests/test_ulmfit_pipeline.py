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

from awdlstm.bow import load_bow, predict_members
from awdlstm.predict import ensemble_accuracy, load_classifier, predict_texts

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
    some = [texts[i] for i in preds["doc_index"][:5]]
    members = [run / "run" / "clas-fwd", run / "run" / "bow"]
    labels, mean, itos = predict_members(members, some)
    alone = predict_texts([load_classifier(members[0])], some)[1]
    assert torch.allclose(mean, (alone + bow.predict_texts(some)) / 2, atol=1e-6) and itos == bow.labels.itos
    assert labels == [itos[i] for i in mean.argmax(-1).tolist()]


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
