"""Stage 2 of ULMFiT: fine-tune an AWD-LSTM language model on the target corpus (chapter 10).

    python scripts/finetune_lm.py                        # the embedded IMDb corpus, preset by device
    python scripts/finetune_lm.py --preset gpu --pretrained wt103
    python scripts/finetune_lm.py --csv my.csv --lm-docs 5000 --epochs 3 --run-dir runs/my-lm
    torchrun --nproc_per_node 4 scripts/finetune_lm.py --preset gpu   # 4 GPUs, each a quarter of every batch

Tokenize the texts (cached), build the vocab (min_freq 3, max_vocab 60,000), start from fastai's WT103 weights
(`--pretrained wt103`, or PATH), our own checkpoint (PATH) or random weights (`none`), train 1 epoch with
all but the last group frozen (lr 2e-2), unfreeze and train more epochs (lr 2e-3), save the model, the
vocab and the encoder into the run folder, and generate a few texts from a prompt.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import pipeline as P
import resume as R
from awdlstm import LanguageModel, generate, lm_config, load_fastai_lm, save_encoder, save_model
from awdlstm import distributed as D
from awdlstm.train import Learner, TrainConfig
from awdlstm.train_checkpoint import set_seed
from data import LMLoader, Texts
from data.download import ChecksumError, DownloadError, UnsafeArchiveError, download_wt103
from tokenizers.corpus import select_docs
from tokenizers.vocab import Vocab

PRETRAINED_HELP = ("none (random weights), wt103 (fastai's WikiText-103 model, downloaded), or PATH: a folder with "
                   "lstm_fwd.pth + itos_wt103.pkl, a .pth file beside its .pkl, or our lm.pt / LM run folder")


def lm_parser(prog: str, doc: str, presets: dict, prompt: str, source: str | None = None) -> P.OneLineParser:
    """The flags of a language-model script (this one, pretrain_lm.py): model start, generation, data, recipe."""
    ap = P.OneLineParser(description=doc, prog=prog)
    P.add_common_flags(ap, presets)
    ap.add_argument("--pretrained", default="none", help=PRETRAINED_HELP)
    ap.add_argument("--backwards", action="store_true", help="train a backward language model (texts reversed)")
    ap.add_argument("--prompt", default=prompt, help="prompt of the generated samples")
    ap.add_argument("--n-words", type=int, default=40, help="words to generate per sample")
    ap.add_argument("--n-samples", type=int, default=2, help="samples to generate (0: none)")
    ap.add_argument("--temperature", type=float, default=0.75, help="sampling temperature")
    R.add_resume_flag(ap)
    P.add_source_flags(ap, **({"default": source} if source else {}))
    P.add_recipe_flags(ap, P.LMRecipe, presets)
    return ap


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return lm_parser("finetune_lm.py", __doc__, P.LM_PRESETS, "I liked this movie because").parse_args(argv)


def find_pretrained(spec: str, backwards: bool, progress: bool = True) -> tuple[Path, Path | None]:
    """`--pretrained` -> (weights file, vocab file or None when the JSON beside the weights has it)."""
    if spec == "wt103":
        try:
            return download_wt103("bwd" if backwards else "fwd", progress=progress)
        except (DownloadError, ChecksumError, UnsafeArchiveError) as e:
            raise type(e)(f"--pretrained wt103: {e}") from None
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"--pretrained {spec}: no such file or folder (or use none / wt103)")
    if path.is_dir():
        if (path / "lm.pt").is_file():
            return path / "lm.pt", None
        pth, pkl = sorted(path.glob("*.pth")), sorted(path.glob("*.pkl"))
        if len(pth) != 1 or len(pkl) != 1:
            raise FileNotFoundError(f"--pretrained {spec}: expected one .pth and one .pkl file (or lm.pt) in it")
        return pth[0], pkl[0]
    if path.with_suffix(".json").is_file():
        return path, None
    pkl = sorted(path.parent.glob("*.pkl"))
    if len(pkl) != 1:
        raise FileNotFoundError(f"--pretrained {spec}: put exactly one itos .pkl file beside it")
    return path, pkl[0]


def build_model(args, r: P.LMRecipe, vocab: Vocab) -> tuple[LanguageModel, str]:
    """A language model for `vocab`: random weights, or pretrained ones with rows matched to the new vocab."""
    if args.pretrained == "none":
        cfg = lm_config(emb_sz=r.emb_sz, n_hid=r.n_hid, n_layers=r.n_layers, drop_mult=r.drop_mult)
        return LanguageModel(len(vocab), cfg), "random weights"
    weights, itos = find_pretrained(args.pretrained, args.backwards, progress=not getattr(args, "quiet", False))
    loaded = load_fastai_lm(weights, itos, vocab=vocab)
    cfg = dataclasses.replace(loaded.model.cfg, drop_mult=r.drop_mult)  # sizes from the weights
    model = LanguageModel(len(vocab), cfg)
    model.load_state_dict(loaded.model.state_dict())
    c = model.cfg
    return model, (f"{weights} ({c.emb_sz}/{c.n_hid}/{c.n_layers}; {loaded.coverage:.1%} of the vocab "
                   "found in the pretrained vocab)")


def main(argv=None) -> None:
    run_lm(parse_args(argv), "finetune_lm", "lm", P.LM_PRESETS,
           lambda args: (P.read_source(args, labelled=False), False))


def run_lm(args: argparse.Namespace, stage: str, folder: str, presets: dict,
           read_texts: Callable[[argparse.Namespace], tuple[Texts, bool]]) -> None:
    """Train a language model as the flags say and save it into a `runs/<folder>-...` run folder: stage 2
    (`finetune_lm`) or, from random weights on a general corpus, stage 1 (`pretrain_lm.py`).
    `read_texts(args)` gives the texts and whether their `is_valid` flags are the validation split to keep
    (else a random `valid_pct` split)."""
    args, saved = R.resume_args(args, stage)  # --resume: the run's own flags
    device = D.setup(P.resolve_device(args.device, args.threads))  # this rank's device under torchrun
    preset, r = P.recipe_from_args(args, presets, device)
    config = {"stage": stage, "preset": preset, "recipe": dataclasses.asdict(r), "args": vars(args),
              "backwards": args.backwards, "device": str(device), "torch": torch.__version__, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    run_dir, resume_from, config = R.start_run(args, saved, folder, "lm.pt", config)
    with P.logged(run_dir) if D.is_main() else D.silenced():  # only rank 0 prints and writes
        print(f"run folder: {run_dir}  (preset {preset}, device {device})")
        set_seed(args.seed)
        rng = np.random.default_rng(args.seed)
        t0 = time.time()
        texts, own_split = read_texts(args)
        corpus = P.tokenize_texts(texts.texts, args.cache_dir, args.quiet or not D.is_main())
        docs = P.sample(np.arange(len(corpus)), r.lm_docs, rng)
        if own_split:  # the corpus's own validation documents (WikiText-103's test.csv)
            flags = np.asarray(texts.is_valid, dtype=bool)[docs]
            train_idx, valid_idx = np.flatnonzero(~flags), np.flatnonzero(flags)
            if len(train_idx) == 0 or len(valid_idx) == 0:
                raise ValueError(f"{len(train_idx)} training and {len(valid_idx)} validation documents: "
                                 "both are needed (raise --lm-docs, or 0 for all)")
        else:
            train_idx, valid_idx = P.random_split(len(docs), r.valid_pct, rng)
        lm_corpus = corpus.subset(docs)
        vocab = Vocab.from_counts(lm_corpus.counts(), min_freq=r.min_freq, max_vocab=r.max_vocab)
        if D.is_main():
            vocab.save(run_dir / "vocab.json")
        ids, offsets = lm_corpus.numericalize(vocab)
        train = select_docs(ids, offsets, train_idx)
        valid = select_docs(ids, offsets, valid_idx)
        print(f"{len(docs)} documents ({len(train_idx)} train, {len(valid_idx)} valid), "
              f"{int(offsets[-1]):,} tokens, vocab {len(vocab)}; data ready in {time.time() - t0:.1f}s")
        shard = {"rank": D.rank(), "world_size": D.world_size()}  # each rank reads rows rank::world_size
        train_dl = LMLoader(train, bs=r.bs, seq_len=r.seq_len, shuffle=True, backwards=args.backwards, seed=args.seed,
                            **shard)
        n_valid_tokens = int(valid[1][-1])  # a tiny validation set gets a smaller batch (each row >= 2 tokens)
        valid_bs = min(r.bs, max(1, (n_valid_tokens - 1) // 2))
        valid_dl = LMLoader(valid, bs=max(D.world_size(), valid_bs // D.world_size() * D.world_size()),
                            seq_len=r.seq_len, shuffle=False, backwards=args.backwards, **shard)

        model, source = build_model(args, r, vocab)
        print(f"model: {source}")
        cfg = TrainConfig(wd=r.wd, precision=r.precision, seed=args.seed, progress=not args.quiet)
        learn = Learner(model, train_dl, valid_dl, run_dir=run_dir, metrics=("accuracy", "perplexity"),
                        cfg=cfg, device=device)
        print(f"precision: {learn.precision.name}")
        t1 = time.time()
        fits = [(-1, r.frozen_epochs, r.frozen_lr), (0, r.epochs, r.lr)]  # frozen, then unfrozen
        R.run_fits(learn, [f for f in fits if f[1] > 0], resume=resume_from)
        train_time = time.time() - t1
        if not D.is_main():
            D.finish()
            return

        save_model(learn.model, run_dir / "lm.pt", vocab)
        save_encoder(learn.model, run_dir / "encoder.pt", vocab)
        samples = [generate(learn.model, vocab, args.prompt, args.n_words, temperature=args.temperature,
                            seed=args.seed + i) for i in range(args.n_samples)]
        for s in samples:
            print(s)
        last = learn.history[-1] if learn.history else {}
        config["results"] = {"train_time_s": round(train_time, 1), "total_time_s": round(time.time() - t0, 1),
                             "vocab_size": len(vocab), "n_docs": len(docs), "n_tokens": int(offsets[-1]),
                             "precision": learn.precision.name, "samples": samples,
                             **{k: last[k] for k in ("valid_loss", "accuracy", "perplexity") if k in last}}
        P.save_config(run_dir, config)
        (run_dir / "last.pt").unlink(missing_ok=True)  # the fit is complete: lm.pt holds the weights
        print(f"saved {run_dir / 'lm.pt'}, {run_dir / 'encoder.pt'} and {run_dir / 'vocab.json'} "
              f"({train_time:.0f}s training)")
    D.finish()


if __name__ == "__main__":
    P.main_guard(main)
