"""ULMFiT, the three stages of chapter 10, each one call from raw texts to a run folder.

    texts = awdlstm.data.imdb_embedded()                            # 25,000 reviews, canonical split
    lm = finetune_lm(texts, LM_PRESETS["cpu"], "runs/lm")           # stage 2: the language model
    clas = train_classifier(texts, "runs/lm", CLAS_PRESETS["cpu"], "runs/clas")   # stage 3
    clas.accuracy                                                   # on the validation reviews

Stage 1 (pretraining on WikiText-103) is `finetune_lm` from random weights with no frozen epoch
(`PRETRAIN_PRESETS`, `stage="pretrain_lm"`). The training itself is the book's calls, in `fine_tune_lm` and
`gradual_unfreeze`; the rest is getting the data ready and writing the run folder (awdlstm/runs.py).
A stage called again with `resume=True` on the same run folder and data finishes an interrupted run: the
weights at the end equal those of an uninterrupted run, bit for bit, on a CPU.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from awdlstm import distributed as D
from awdlstm import runs
from awdlstm.checkpoint import load_encoder, read_meta, save_encoder, save_model
from awdlstm.classifier import TextClassifier
from awdlstm.data import ClasLoader, FastLMLoader, LabelVocab, Texts
from awdlstm.data.download import get_cache_dir
from awdlstm.data.labels import check_class_counts, check_label_case, check_split_size, label_table
from awdlstm.data.splits import random_split, sample, split_docs
from awdlstm.data.text_source import TextSource
from awdlstm.generate import generate
from awdlstm.model import AWDLSTMConfig, LanguageModel, clas_config, lm_config
from awdlstm.predict import predict_ids, save_valid_preds
from awdlstm.pretrained import find_pretrained, load_fastai_lm
from awdlstm.recipes import ClasRecipe, LMRecipe
from awdlstm.shared_corpus import MappedCorpus, lm_texts, mapped_lm_data, n_tokens
from awdlstm.tokenizers.corpus import TokenizedCorpus, select_docs, tokenize_corpus
from awdlstm.tokenizers.vocab import Vocab
from awdlstm.train import FitInterrupted, Learner, TrainConfig
from awdlstm.train_checkpoint import set_seed

# ---------------------------------------------------------------- the book's training calls

def fine_tune_lm(learn: Learner, r: LMRecipe) -> None:
    """Chapter 10, "Fine-Tuning the Language Model": the new embeddings first, then the whole model."""
    learn.freeze()
    learn.fit_one_cycle(r.frozen_epochs, r.frozen_lr)  # only the last group trains (embeddings + decoder)
    learn.unfreeze()
    learn.fit_one_cycle(r.epochs, r.lr)  # every layer


def gradual_unfreeze(learn: Learner, r: ClasRecipe) -> None:
    """Chapter 10, "Fine-Tuning the Classifier": gradual unfreezing with discriminative learning rates."""
    (e1, e2, e3, e4), (lr1, lr2, lr3, lr4), m = r.epochs, r.lrs, r.lr_mult
    learn.freeze()
    learn.fit_one_cycle(e1, lr1)  # the new head only: the encoder is frozen
    learn.freeze_to(-2)
    learn.fit_one_cycle(e2, slice(lr2 / m, lr2))  # + the last LSTM layer
    learn.freeze_to(-3)
    learn.fit_one_cycle(e3, slice(lr3 / m, lr3))  # + the one before it
    learn.unfreeze()
    learn.fit_one_cycle(e4, slice(lr4 / m, lr4))  # the whole model, lower layers at lower rates


# ---------------------------------------------------------------- getting the data ready

def tokenize_texts(texts: list[str], cache_dir: str | Path | None = None, progress: bool = True) -> TokenizedCorpus:
    """All texts through the word pipeline, on all cores, cached (a second run on the same texts is instant)."""
    cache = Path(cache_dir) if cache_dir else get_cache_dir() / "tokens"
    cache.mkdir(parents=True, exist_ok=True)
    return tokenize_corpus(texts, cache_dir=cache, progress=None if progress else False)


@dataclass
class LMResult:
    """What `finetune_lm` made: the run folder (lm.pt, encoder.pt, vocab.json, ...) and its final figures."""

    run_dir: Path
    vocab: Vocab
    model: LanguageModel
    history: list[dict]
    samples: list[str]

    @property
    def perplexity(self) -> float:
        return self.history[-1]["perplexity"] if self.history else float("nan")


@dataclass
class ClasResult:
    """What `train_classifier` made: the run folder (classifier.pt, vocab.json, labels.json, ...) and figures."""

    run_dir: Path
    model: TextClassifier
    labels: LabelVocab
    history: list[dict]
    accuracy: float
    valid_loss: float


def _lm_model(vocab: Vocab, r: LMRecipe, pretrained: str, backwards: bool, progress: bool) -> tuple[LanguageModel, str]:
    """A language model for `vocab`: random weights, or pretrained ones with rows matched to the new vocab."""
    if pretrained == "none":
        cfg = lm_config(emb_sz=r.emb_sz, n_hid=r.n_hid, n_layers=r.n_layers, drop_mult=r.drop_mult)
        return LanguageModel(len(vocab), cfg), "random weights"
    weights, itos = find_pretrained(pretrained, backwards, progress=progress)
    loaded = load_fastai_lm(weights, itos, vocab=vocab)
    model = LanguageModel(len(vocab), dataclasses.replace(loaded.model.cfg, drop_mult=r.drop_mult))  # sizes: weights'
    model.load_state_dict(loaded.model.state_dict())
    c = model.cfg
    return model, (f"{weights} ({c.emb_sz}/{c.n_hid}/{c.n_layers}; {loaded.coverage:.1%} of the vocab "
                   "found in the pretrained vocab)")


def _settings(stage: str, recipe, texts: Texts, device: torch.device, **kwargs) -> dict:
    """config.json of a new run: the stage, the recipe, the other arguments and the data's digest."""
    return {"stage": stage, "recipe": dataclasses.asdict(recipe), **kwargs,
            "data_digest": texts.manifest["key"] if isinstance(texts, MappedCorpus) else
            runs.data_digest(texts.texts, texts.labels), "n_texts": len(texts),
            "device": str(device), "torch": torch.__version__, "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def _fit(learn: Learner, train, resume_from: Path | None) -> None:
    """Run the stage's training calls `train(learn)`, from `resume_from` (an end-of-epoch last.pt) if given."""
    if resume_from is not None:
        learn.resume(resume_from)
    try:
        train(learn)
    except FitInterrupted:  # Ctrl-C: the Learner saved interrupted.pt; last.pt is where --resume starts
        raise FitInterrupted(f"Weights saved to {learn.run_dir / 'interrupted.pt'}. Finish the run with --resume "
                             f"{learn.run_dir} (from its last completed epoch, or from the start if there is none)."
                             ) from None
    learn.check_resumed()


# ---------------------------------------------------------------- stage 2 (and 1): the language model

def finetune_lm(texts: Texts | MappedCorpus, recipe: LMRecipe, run_dir: str | Path | None = None, device: str | torch.device = "cpu",
                *, pretrained: str = "none", backwards: bool = False, own_split: bool = False, seed: int = 42,
                cache_dir: str | Path | None = None, progress: bool = True, resume: bool = False,
                prompt: str = "I liked this movie because", n_samples: int = 2, n_words: int = 40,
                temperature: float = 0.75, stage: str = "finetune_lm", settings: dict | None = None) -> LMResult:
    """Train a language model on `texts` and save it into `run_dir` (default: a new runs/lm-...).

    Tokenize (cached), build the vocab from the language model's documents, start from `pretrained` ('none':
    random weights; 'wt103': fastai's WikiText-103 model; or a path), train as `fine_tune_lm` (the book's
    frozen epoch, then the whole model), save lm.pt, encoder.pt and vocab.json, and sample `n_samples` texts
    from `prompt`. `own_split` keeps the texts' `is_valid` flags as the validation set (WikiText-103's test
    set), else a random `valid_pct` of the documents validates. `settings` are extra entries of config.json.
    `texts` may be a corpus streamed to disk (awdlstm/shared_corpus.py `lm_texts`): the same data, mapped.
    """
    device = torch.device(device)
    folder = "pretrain" if stage == "pretrain_lm" else "lm"
    config = _settings(stage, recipe, texts, device, seed=seed, backwards=backwards, pretrained=pretrained,
                       own_split=own_split, cache_dir=cache_dir, prompt=prompt, n_samples=n_samples,
                       n_words=n_words, temperature=temperature, **(settings or {}))
    run_dir = Path(D.broadcast_str(str(run_dir or runs.new_run_dir(folder)) if D.is_main() else None))
    opened = runs.open_run(run_dir, stage, folder, "lm.pt", config, resume, main=D.is_main())
    with opened as (run_dir, resume_from, config), runs.logged(run_dir) if D.is_main() else D.silenced():
        print(f"run folder: {run_dir}  (device {device})")  # only rank 0 prints and writes
        set_seed(seed)
        rng = np.random.default_rng(seed)
        t0 = time.time()
        corpus = texts if isinstance(texts, MappedCorpus) else tokenize_texts(texts.texts, cache_dir, progress and D.is_main())
        docs = sample(np.arange(len(corpus)), recipe.lm_docs, rng)
        if own_split:  # the corpus's own validation documents (WikiText-103's test.csv)
            flags = np.asarray(texts.is_valid, dtype=bool)[docs]
            train_idx, valid_idx = np.flatnonzero(~flags), np.flatnonzero(flags)
            if len(train_idx) == 0 or len(valid_idx) == 0:
                raise ValueError(f"{len(train_idx)} training and {len(valid_idx)} validation documents: "
                                 "both are needed (raise --lm-docs, or 0 for all)")
        else:
            train_idx, valid_idx = random_split(len(docs), recipe.valid_pct, rng)
            if len(train_idx) == 0:  # one document: it would validate, nothing would train
                raise ValueError(f"{_source_of(texts, settings)}: {len(docs)} document, too few for a language model: "
                                 "it needs at least 2 (one to train on, one to validate; --valid-pct "
                                 f"{recipe.valid_pct:g} of them validate): add documents")
        if isinstance(corpus, MappedCorpus):  # bigger than memory: indices into the map (awdlstm/shared_corpus.py)
            vocab, train, valid = mapped_lm_data(corpus, docs, train_idx, valid_idx, recipe.min_freq, recipe.max_vocab)
        else:
            lm_corpus = corpus.subset(docs)
            vocab = Vocab.from_counts(lm_corpus.counts(), min_freq=recipe.min_freq, max_vocab=recipe.max_vocab)
            ids, offsets = lm_corpus.numericalize(vocab)
            train, valid = (select_docs(ids, offsets, train_idx), None), (select_docs(ids, offsets, valid_idx), None)
        if D.is_main():
            vocab.save(run_dir / "vocab.json")
        lm_tokens = n_tokens(train) + n_tokens(valid)
        streamed = "" if not isinstance(corpus, MappedCorpus) else \
            f" (+ {corpus.built_s:.1f}s streaming the corpus)" if corpus.built_s else " (the streamed corpus reused)"
        print(f"{len(docs)} documents ({len(train_idx)} train, {len(valid_idx)} valid), "
              f"{lm_tokens:,} tokens, vocab {len(vocab)}; data ready in {time.time() - t0:.1f}s{streamed}")
        shard = {"rank": D.rank(), "world_size": D.world_size()}  # each rank reads rows rank::world_size
        train_dl = FastLMLoader(train[0], bs=recipe.bs, seq_len=recipe.seq_len, shuffle=True, backwards=backwards,
                                seed=seed, idxs=train[1], **shard)
        valid_bs = min(recipe.bs, max(1, (n_tokens(valid) - 1) // 2))  # a tiny validation set: a smaller batch
        valid_dl = FastLMLoader(valid[0], bs=max(D.world_size(), valid_bs // D.world_size() * D.world_size()),
                                seq_len=recipe.seq_len, shuffle=False, backwards=backwards, idxs=valid[1], **shard)

        model, source = _lm_model(vocab, recipe, pretrained, backwards, progress and D.is_main())
        print(f"model: {source}")
        cfg = TrainConfig(wd=recipe.wd, precision=recipe.precision, seed=seed, progress=progress)
        learn = Learner(model, train_dl, valid_dl, run_dir=run_dir, metrics=("accuracy", "perplexity"), cfg=cfg,
                        device=device)
        print(f"precision: {learn.precision_note()}")
        t1 = time.time()
        _fit(learn, lambda learn: fine_tune_lm(learn, recipe), resume_from)
        train_time = time.time() - t1
        samples = []
        if D.is_main():
            save_model(learn.model, run_dir / "lm.pt", vocab)
            save_encoder(learn.model, run_dir / "encoder.pt", vocab)
            samples = [generate(learn.model, vocab, prompt, n_words, temperature=temperature, seed=seed + i,
                                backwards=backwards) for i in range(n_samples)]
            for s in samples:
                print(s)
            last = learn.history[-1] if learn.history else {}
            config["results"] = {"train_time_s": round(train_time, 1), "total_time_s": round(time.time() - t0, 1),
                                 "vocab_size": len(vocab), "n_docs": len(docs), "n_tokens": lm_tokens,
                                 "precision": learn.precision.name, "bf16_speedup": learn.bf16_speedup,
                                 "samples": samples,
                                 **{k: last[k] for k in ("valid_loss", "accuracy", "perplexity") if k in last}}
            runs.save_config(run_dir, config)
            (run_dir / "last.pt").unlink(missing_ok=True)  # the fit is complete: lm.pt holds the weights
            print(f"saved {run_dir / 'lm.pt'}, {run_dir / 'encoder.pt'} and {run_dir / 'vocab.json'} "
                  f"({train_time:.0f}s training)")
    return LMResult(run_dir, vocab, learn.model, learn.history, samples)


# ---------------------------------------------------------------- stage 3: the classifier

def train_classifier(texts: Texts, encoder: str | Path, recipe: ClasRecipe, run_dir: str | Path | None = None,
                     device: str | torch.device = "cpu", *, seed: int = 42, cache_dir: str | Path | None = None,
                     progress: bool = True, resume: bool = False, settings: dict | None = None) -> ClasResult:
    """Train a classifier on labelled `texts` from the encoder of a language-model run folder `encoder`.

    The texts' own split (`is_valid`; the embedded corpus: 20,000 / 5,000 reviews) or a random `valid_pct`
    one; the language model's vocab and encoder; `gradual_unfreeze` as the book. Saves classifier.pt,
    vocab.json and labels.json into `run_dir` (default: a new runs/clas-...).
    """
    device = torch.device(device)
    enc_path = runs.run_file(encoder, "encoder.pt")
    vocab = Vocab.load(runs.run_file(encoder, "vocab.json"))
    enc_cfg = AWDLSTMConfig.from_dict(read_meta(enc_path)["config"])
    backwards = bool(runs.read_config(encoder).get("backwards"))
    if texts.labels is None:
        raise ValueError("train_classifier needs labelled texts")
    # the label rules (data/labels.py), checked before a run folder is made: the split is the run's own
    where, hint = _source_of(texts, settings), _split_hint(texts, recipe, settings)
    check_label_case(texts.labels, where)
    check_split_size(texts.labels, texts.is_valid, recipe.valid_pct, where, _split_hint(texts, recipe, settings, False))
    train_idx, valid_idx = split_docs(texts.is_valid, len(texts), recipe.valid_pct, np.random.default_rng(seed),
                                      recipe.train_docs, recipe.valid_docs)
    train_labels = [texts.labels[i] for i in train_idx]
    valid_labels = [texts.labels[i] for i in valid_idx]
    check_class_counts(train_labels, valid_labels, where, hint, _examples(texts))
    config = _settings("train_classifier", recipe, texts, device, seed=seed, encoder=str(enc_path),
                       cache_dir=cache_dir, backwards=backwards, **(settings or {}))
    run_dir = Path(D.broadcast_str(str(run_dir or runs.new_run_dir("clas")) if D.is_main() else None))
    if run_dir.resolve() == Path(encoder).resolve():
        raise ValueError(f"the classifier's run folder {run_dir} is the language model's: give a new one")
    opened = runs.open_run(run_dir, "train_classifier", "clas", "classifier.pt", config, resume, main=D.is_main())
    with opened as (run_dir, resume_from, config), runs.logged(run_dir) if D.is_main() else D.silenced():
        print(f"run folder: {run_dir}  (device {device}, encoder {enc_path})")
        set_seed(seed)
        t0 = time.time()
        print(label_table(train_labels, valid_labels))  # the classes as the classifier will learn them
        corpus = tokenize_texts(texts.texts, cache_dir, progress and D.is_main())
        labels = LabelVocab.build(train_labels)
        train = corpus.subset(train_idx, recipe.max_tokens).numericalize(vocab)
        valid = corpus.subset(valid_idx, recipe.max_tokens).numericalize(vocab)
        shard = {"rank": D.rank(), "world_size": D.world_size()}
        train_dl = ClasLoader(train, train_labels, bs=recipe.bs, seq_len=recipe.seq_len, shuffle=True,
                              backwards=backwards, seed=seed, label_vocab=labels, **shard)
        valid_dl = ClasLoader(valid, valid_labels, bs=recipe.bs, seq_len=recipe.seq_len, shuffle=False,
                              backwards=backwards, label_vocab=labels, source="the validation split", **shard)
        print(f"{len(train_idx)} training and {len(valid_idx)} validation documents, labels {labels.itos}; "
              f"data ready in {time.time() - t0:.1f}s")

        cfg = clas_config(emb_sz=enc_cfg.emb_sz, n_hid=enc_cfg.n_hid, n_layers=enc_cfg.n_layers,
                          drop_mult=recipe.drop_mult)
        model = TextClassifier(len(vocab), len(labels), cfg, bptt=recipe.seq_len, max_len=recipe.max_len)
        load_encoder(model, enc_path, vocab)
        learn = Learner(model, train_dl, valid_dl, run_dir=run_dir, metrics=("accuracy",),
                        cfg=TrainConfig(wd=recipe.wd, precision=recipe.precision, seed=seed, progress=progress),
                        device=device)
        print(f"precision: {learn.precision_note()}")
        t1 = time.time()
        _fit(learn, lambda learn: gradual_unfreeze(learn, recipe), resume_from)
        train_time = time.time() - t1
        final = learn.validate()  # every rank takes part: the metrics are summed over ranks
        if D.is_main():
            save_model(learn.model, run_dir / "classifier.pt", vocab)
            vocab.save(run_dir / "vocab.json")
            labels.save(run_dir / "labels.json")
            probs = predict_ids(learn.model, valid, bs=recipe.bs, backwards=backwards, device=device)
            save_valid_preds(run_dir, valid_idx, labels.encode(valid_labels), probs)  # for ensemble_accuracy
            config["results"] = {"accuracy": final["accuracy"], "valid_loss": final["valid_loss"],
                                 "train_time_s": round(train_time, 1), "total_time_s": round(time.time() - t0, 1),
                                 "n_train": len(train_idx), "n_valid": len(valid_idx),
                                 "precision": learn.precision.name}
            runs.save_config(run_dir, config)
            (run_dir / "last.pt").unlink(missing_ok=True)  # complete: classifier.pt holds the weights
            print(f"final validation accuracy: {final['accuracy']:.4f} on {len(valid_idx)} documents "
                  f"({train_time:.0f}s training)")
            print(f"saved {run_dir / 'classifier.pt'}, vocab.json, labels.json and valid_preds.json")
    return ClasResult(run_dir, learn.model, labels, learn.history, final["accuracy"], final["valid_loss"])


def _source_of(texts: Texts, settings: dict | None) -> str:
    """How errors name the texts: as the flag that gave them (`--csv my.csv`), else the file they came from."""
    src = (settings or {}).get("source")
    if isinstance(src, dict):
        return TextSource(**src).describe()
    return texts.origin or "the texts"


def _split_hint(texts: Texts, recipe: ClasRecipe, settings: dict | None, subsets: bool = True) -> str:
    """What changes the split of `texts`: the flags, as the user gives them (`subsets`: and the number of
    documents of each split the recipe uses)."""
    kind = ((settings or {}).get("source") or {}).get("kind")
    if texts.is_valid is None:
        hint = (f"change the split: --valid-pct (now {recipe.valid_pct:g}), or mark the validation rows of a CSV "
                "with --valid-col")
    elif kind == "csv" or (kind is None and str(texts.origin).lower().endswith(".csv")):
        hint = "change which rows validate in the --valid-col column (or leave it out: --valid-pct)"
    elif kind == "folder" or (kind is None and texts.origin):
        hint = "move documents between its train/ and test/ folders"
    else:
        hint = "use another split"
    if subsets and (recipe.train_docs or recipe.valid_docs):
        hint += f", or use more of them: --train-docs {recipe.train_docs} --valid-docs {recipe.valid_docs} now (0: all)"
    return hint


def _examples(texts: Texts) -> dict[str, list[str]]:
    """The first three documents (file, or file:row) of each label, for the error that names a class."""
    out: dict[str, list[str]] = {}
    for name, label in zip(texts.names or [], texts.labels or [], strict=False):
        if len(out.setdefault(label, [])) < 3:
            out[label].append(name)
    return out


# ---------------------------------------------------------------- --resume

def resume_run(run_dir: str | Path, stage: str, device: str | torch.device = "cpu", progress: bool = True
               ) -> LMResult | ClasResult:
    """Finish the interrupted `stage` run in `run_dir` with the settings in its config.json: the same text
    source (checked against the data digest), recipe, seed and options; only the device may differ."""
    path = Path(run_dir)
    saved = runs.stage_config(path, stage)
    cls = ClasRecipe if stage == "train_classifier" else LMRecipe
    known = {f.name for f in dataclasses.fields(cls)}
    if not isinstance(saved.get("recipe"), dict) or not isinstance(saved.get("source"), dict):
        raise ValueError(f"--resume {path}: {path / 'config.json'} has no recipe or text source (not written by "
                         "this version's scripts, or started from Python with texts: resume it from Python)")
    unknown = sorted(set(saved["recipe"]) - known)
    if unknown:
        raise ValueError(f"--resume {path}: {path / 'config.json'} has recipe fields this version does not know: "
                         f"{unknown}")
    recipe = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved["recipe"].items()})
    source = TextSource(**saved["source"])
    texts = (source.read(labelled=True, progress=progress) if stage == "train_classifier" else
             lm_texts(source, saved.get("stream", False), saved.get("cache_dir"), progress))
    common = {"seed": saved.get("seed", 42), "cache_dir": saved.get("cache_dir"), "progress": progress,
              "resume": True, "settings": {"source": saved["source"], "preset": saved.get("preset"),
                                           **({"stream": True} if saved.get("stream") else {})}}
    if stage == "train_classifier":
        return train_classifier(texts, Path(saved["encoder"]).parent, recipe, path, device, **common)
    return finetune_lm(texts, recipe, path, device, stage=stage, **common,
                       **{k: saved[k] for k in ("pretrained", "backwards", "own_split", "prompt", "n_samples",
                                                "n_words", "temperature") if k in saved})
