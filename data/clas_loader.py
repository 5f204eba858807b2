"""The classifier batcher: fastai's SortedDL + pad_input_chunk (chapter 10, "Creating the Classifier DataLoaders").

Documents have different lengths, so a batch is padded with xxpad (id 1) to its longest document. To waste
little padding, batches hold documents of similar length: validation batches are sorted by length
(descending); training batches are sorted inside random chunks of `bs*50` documents and the batches are
then shuffled, the batch holding the longest document always first (fastai's `SortedDL.shuffle_fn`).
Padding goes in whole chunks of `seq_len` in front of the text, the remainder after it (`pad_chunk`), so
every text starts on a `seq_len` boundary, which the classifier's SentenceEncoder relies on.

Because batches are built in length order, predictions come out in that order: `loader.order` is the
permutation and `restore_order(preds, loader.order)` puts them back in the input order.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..tokenizers.atomic import read_json, write_json
from .lm_loader import Docs, check_shard, flatten_docs

PAD_IDX = 1  # xxpad


def pad_chunk(x: Sequence[int] | torch.Tensor, pad_idx: int = PAD_IDX, pad_first: bool = True,
              seq_len: int = 72, pad_len: int = 10) -> torch.Tensor:
    """fastai's `pad_chunk`: pad `x` to `pad_len` with whole `seq_len` chunks of padding plus a remainder.

    With `n = pad_len - len(x)`: pad_first gives `[pad]*(n//seq_len*seq_len) + x + [pad]*(n%seq_len)`,
    otherwise `x + [pad]*n`.

        >>> pad_chunk([37, 24, 15], seq_len=5, pad_len=12).tolist()
        [1, 1, 1, 1, 1, 37, 24, 15, 1, 1, 1, 1]
    """
    x = torch.as_tensor(x, dtype=torch.int64)
    n_pad = pad_len - x.shape[0]
    if n_pad < 0:
        raise ValueError(f"pad_len={pad_len} is shorter than the text ({x.shape[0]} tokens)")
    chunk = x.new_full(((n_pad // seq_len) * seq_len,), pad_idx)
    rest = x.new_full((n_pad % seq_len,), pad_idx)
    return torch.cat([chunk, x, rest]) if pad_first else torch.cat([x, chunk, rest])


def pad_input_chunk(samples: Sequence[tuple], pad_idx: int = PAD_IDX, pad_first: bool = True,
                    seq_len: int = 72) -> list[tuple]:
    """fastai's `pad_input_chunk`: pad the first element of every `(x, *rest)` sample to the longest x."""
    max_len = max(len(s[0]) for s in samples)
    return [(pad_chunk(s[0], pad_idx, pad_first, seq_len, max_len), *s[1:]) for s in samples]


def restore_order(preds: torch.Tensor | np.ndarray | Sequence, order: np.ndarray) -> torch.Tensor | np.ndarray | list:
    """Undo the length sorting: `preds[j]` belongs to input `order[j]`; returns them in input order.

        >>> restore_order(['b', 'c', 'a'], np.array([1, 2, 0]))
        ['a', 'b', 'c']
    """
    order = np.asarray(order)
    if len(preds) != len(order) or len(np.unique(order)) != len(order):
        raise ValueError(f"restore_order needs one prediction per input: got {len(preds)} predictions for an "
                         f"order of {len(order)} ({len(np.unique(order))} distinct); "
                         "was the loader built with drop_last=True?")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    if isinstance(preds, torch.Tensor):
        return preds[torch.from_numpy(inverse)]
    if isinstance(preds, np.ndarray):
        return preds[inverse]
    return [preds[i] for i in inverse]


class LabelVocab:
    """The label vocabulary (fastai's CategoryMap): sorted distinct labels; `stoi` maps label -> id."""

    def __init__(self, itos: Sequence[str]):
        self.itos = [str(o) for o in itos]
        if len(set(self.itos)) != len(self.itos):
            raise ValueError(f"duplicate labels in label vocabulary: {self.itos}")
        self.stoi = {o: i for i, o in enumerate(self.itos)}

    @classmethod
    def build(cls, labels: Sequence) -> LabelVocab:
        """Sorted distinct labels, as fastai's `CategoryMap(labels)`."""
        return cls(sorted({str(o) for o in labels}))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, labels: Sequence, source: str | None = None) -> list[int]:
        """Labels -> ids. Labels that are not classes are an error that names them, how many documents have
        them, and what to change (`source`, e.g. the file they came from, starts the message)."""
        labels = [str(o) for o in labels]
        try:
            return [self.stoi[o] for o in labels]
        except KeyError:
            pass
        unknown = Counter(o for o in labels if o not in self.stoi)
        n = sum(unknown.values())
        which = ", ".join(f"{o!r} ({c} document{'s' if c > 1 else ''})" for o, c in sorted(unknown.items()))
        raise ValueError(f"{source + ': ' if source else ''}{n} of these {len(labels)} documents have a label that is "
                         f"not a class of the classifier: {which}. The classes {self.itos} are the labels of the "
                         "training documents, and a class with no training document cannot be learned: give it "
                         "training documents (change the split or the number of training documents) or leave "
                         "these documents out") from None

    def decode(self, ids: Sequence[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    def save(self, path: str | os.PathLike) -> None:
        """Write the labels as JSON, atomically (temp file + os.replace), with a checksum checked by `load`."""
        write_json(path, {"labels": self.itos}, checksum=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LabelVocab:
        obj = read_json(path)
        if not isinstance(obj, dict) or not isinstance(obj.get("labels"), list):
            raise ValueError(f"{path}: not a label vocabulary (expected {{\"labels\": [...]}})")
        return cls(obj["labels"])


class ClasLoader:
    """fastai's `SortedDL` with `Pad_Chunk`: classifier batches `(x (bs, padded_len), y (bs,))`, int64.

    `labels` are ints (class ids) or strings mapped through `label_vocab` (built with `LabelVocab.build` when
    not given); `labels=None` yields `(x, None)` (prediction). `shuffle=True` is the training order, False the
    validation order (descending length). `drop_last` defaults to `shuffle`, as fastai's training loader.
    `backwards=True` reverses every document before padding; padding stays in front of the (reversed) text,
    so in the original reading order it sits after the text, and the SentenceEncoder works unchanged.

    Data parallelism (awdlstm/distributed.py): with `world_size > 1` this process yields the rows
    `rank::world_size` of every batch (still longest first), padded to their own longest. The batches are
    those of one process with batch size `bs`, so across ranks every document is read once per epoch. Training
    (drop_last) batches are full, so every rank gets bs // world_size rows and takes the same number of steps;
    a rank whose share of the last, short validation batch is empty skips it.

    `source` (where the documents came from, e.g. "--csv reviews.csv, validation") starts every error message.

    `whole_chunks=True` pads every batch to a multiple of `seq_len` (prediction): then each document's text
    starts and ends inside the same chunks, and its prediction is the one it gets alone, whatever the lengths
    of the others in its batch. fastai pads to the longest document (the default, which training keeps): where
    the last chunk is partial, a short document lying in it can be left unread by the SentenceEncoder (a longer
    row's text has ended there) and pooled from a padding position.
    """

    def __init__(self, docs: Docs, labels: Sequence | None = None, bs: int = 64, seq_len: int = 72,
                 shuffle: bool = False, backwards: bool = False, pad_idx: int = PAD_IDX, pad_first: bool = True,
                 drop_last: bool | None = None, seed: int | None = None, label_vocab: LabelVocab | None = None,
                 rank: int = 0, world_size: int = 1, source: str | None = None, whole_chunks: bool = False):
        check_shard(bs, rank, world_size)
        self.rank, self.world_size = rank, world_size
        self.ids, self.offsets = flatten_docs(docs)
        self.lens = np.diff(self.offsets)  # (n_docs,)
        n = len(self.lens)
        if n == 0:
            raise ValueError(f"{source + ': ' if source else ''}no documents to batch")
        self.label_vocab, self.y = label_vocab, None
        if labels is not None:
            if len(labels) != n:
                raise ValueError(f"{source + ': ' if source else ''}got {n} documents but {len(labels)} labels")
            if isinstance(labels, torch.Tensor):
                labels = labels.cpu().numpy()
            is_ids = (labels.dtype.kind in "iu" if isinstance(labels, np.ndarray)
                      else all(isinstance(o, int | np.integer) for o in labels))
            if is_ids and label_vocab is None:  # already class ids
                self.y = np.asarray(labels, dtype=np.int64)
            else:
                self.label_vocab = label_vocab or LabelVocab.build(labels)
                self.y = np.asarray(self.label_vocab.encode(labels, source), dtype=np.int64)
        self.bs, self.seq_len, self.shuffle, self.backwards = bs, seq_len, shuffle, backwards
        self.pad_idx, self.pad_first, self.whole_chunks = pad_idx, pad_first, whole_chunks
        self.drop_last = shuffle if drop_last is None else drop_last
        self.seed = int(torch.randint(0, 2**31 - 1, ()).item()) if seed is None else int(seed)
        self.epoch = 0
        self.order = self.epoch_order()

    def __len__(self) -> int:
        """Batches per epoch (of this rank)."""
        n = len(self.lens)
        return n // self.bs if self.drop_last else n // self.bs + int(n % self.bs > self.rank)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch the next `iter()` runs."""
        self.epoch = int(epoch)

    def epoch_order(self, epoch: int | None = None) -> np.ndarray:
        """The document indices in the order they are batched in `epoch` (drop_last already applied).

        Validation: stable sort by decreasing length. Training: fastai's `SortedDL.shuffle_fn` with
        `np.random.RandomState(seed + epoch)` in place of numpy's global generator.
        """
        n, bs = len(self.lens), self.bs
        if not self.shuffle:
            idxs = np.argsort(-self.lens, kind="stable")
        else:
            rng = np.random.RandomState((self.seed + (self.epoch if epoch is None else epoch)) % 2**32)
            idxs = rng.permutation(n)
            i_max = int(np.flatnonzero(idxs == np.argmax(self.lens))[0])  # longest doc goes to the first batch
            idxs[0], idxs[i_max] = idxs[i_max], idxs[0]
            sz = bs * 50
            idxs = np.concatenate([c[np.argsort(-self.lens[c], kind="stable")]
                                   for c in (idxs[i:i + sz] for i in range(0, n, sz))])
            batches = [idxs[i:i + bs] for i in range(0, n, bs)]
            if len(batches) > 2:  # first and last batch stay where they are, the others are shuffled
                middle = rng.permutation(np.stack(batches[1:-1]))
                batches = [batches[0], *middle, batches[-1]]
            idxs = np.concatenate(batches)
        return idxs[:n // bs * bs] if self.drop_last else idxs

    def batch(self, doc_idxs: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pad the documents `doc_idxs` into one batch: x (len(doc_idxs), padded_len), y (len(doc_idxs),)."""
        doc_idxs = np.asarray(doc_idxs)
        lens = self.lens[doc_idxs]
        max_len = int(lens.max())
        if self.whole_chunks:
            max_len = -(-max_len // self.seq_len) * self.seq_len  # rounded up to whole seq_len chunks
        x = np.full((len(doc_idxs), max_len), self.pad_idx, dtype=np.int64)  # (bs, padded_len)
        for row, (d, n) in enumerate(zip(doc_idxs, lens, strict=True)):
            text = self.ids[self.offsets[d]:self.offsets[d + 1]]
            if self.backwards:
                text = text[::-1]
            start = (max_len - n) // self.seq_len * self.seq_len if self.pad_first else 0
            x[row, start:start + n] = text
        y = None if self.y is None else torch.from_numpy(self.y[doc_idxs])
        return torch.from_numpy(x), y

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        self.order = self.epoch_order()
        self.epoch += 1
        for i in range(0, len(self.order), self.bs):
            share = self.order[i:i + self.bs][self.rank::self.world_size]  # all of it for one process
            if len(share):
                yield self.batch(share)

    def restore_order(self, preds: torch.Tensor | np.ndarray | Sequence) -> torch.Tensor | np.ndarray | list:
        """Predictions made over one epoch of this loader, back in the order of the input documents."""
        if self.world_size > 1:
            raise ValueError("restore_order needs the predictions of every rank; this loader yields one rank's share")
        if len(self.order) != len(self.lens):
            raise ValueError(f"this epoch batched {len(self.order)} of {len(self.lens)} documents (drop_last=True); "
                             "build the loader with drop_last=False to predict every document")
        return restore_order(preds, self.order)


SortedDL = ClasLoader  # the book's name
