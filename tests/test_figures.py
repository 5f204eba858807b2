"""scripts/dev/figures.py draws every picture of docs/figures/ from the committed docs/data/*.json, and adds a
run folder's learning curves (--run) from its history.json."""
import json
import subprocess
import sys

import pytest
from run_scripts import ROOT

pytest.importorskip("matplotlib")

FIGURES = ROOT / "scripts" / "dev" / "figures.py"
PICTURES = {"ulmfit_stages.png", "learning_curves.png", "accuracy_vs_minutes.png", "speed_vs_fastai.png"}


def figures(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FIGURES), *args], capture_output=True, text=True, timeout=300)


def test_every_picture_from_the_committed_data(tmp_path):
    out = figures("--out", str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    written = {p.name for p in tmp_path.glob("*.png")}
    assert PICTURES <= written
    if (ROOT / "docs" / "data" / "benchmarks_roofs.json").is_file():
        assert "roofs.png" in written
    for p in tmp_path.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000  # a drawn picture
    assert {p.name for p in (ROOT / "docs" / "figures").glob("*.png")} >= PICTURES  # committed too


def test_measured_data_name_their_source():
    """Every measured row names its host kind (one of hosts.json's), and every file its source."""
    data = ROOT / "docs" / "data"
    hosts = json.loads((data / "hosts.json").read_text())["hosts"]
    for name in ("accuracy.json", "speed_vs_fastai.json", "learning_curves.json"):
        d = json.loads((data / name).read_text())
        assert d["source"]
        for r in d.get("rows", d.get("runs")):
            assert r["host"] in hosts or r.get("family") == "book", (name, r)
            assert r.get("command") or r.get("family") == "book", (name, r)


def test_a_run_folder_joins_the_learning_curves(tmp_path):
    data, run = tmp_path / "data", tmp_path / "clas-x"
    data.mkdir()
    run.mkdir()
    for f in (ROOT / "docs" / "data").glob("*.json"):
        if not f.name.startswith("run_"):
            (data / f.name).write_text(f.read_text())
    epochs = [{"fit": i, "epoch": 0, "train_loss": 0.5 - i / 10, "valid_loss": 0.4 - i / 20, "accuracy": 0.8 + i / 50,
               "time": 10.0, "iter": 10 * i + 9} for i in range(3)]
    (run / "history.json").write_text(json.dumps({"epochs": epochs, "batches": {"iter": list(range(30)),
                                                                                "loss": [0.5] * 30, "lr": [0.1] * 30}}))
    (run / "config.json").write_text(json.dumps({"stage": "train_classifier", "seed": 3, "preset": "cpu"}))
    out = figures("--data", str(data), "--out", str(tmp_path / "fig"), "--run", str(run), "--host", "intel-amx")
    assert out.returncode == 0, out.stderr[-2000:]
    stored = json.loads((data / "run_clas-x.json").read_text())
    assert stored["stage"] == "clas" and stored["host"] == "intel-amx" and stored["seed"] == 3
    assert [e["accuracy"] for e in stored["epochs"]] == pytest.approx([0.8, 0.82, 0.84])
    assert (tmp_path / "fig" / "learning_curves.png").is_file()
    bad = figures("--data", str(data), "--out", str(tmp_path / "fig"), "--run", str(tmp_path / "nothing"))
    assert bad.returncode == 1 and "no history.json" in bad.stderr
