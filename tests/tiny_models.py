"""Tiny stand-ins for awdlstm's models, following the model API of BRIEF.md exactly, for fast loop tests:
`forward(x) -> (logits, raw_out, dropped_out)`, `.reset()`, `.param_groups()` (the last group is trained
when frozen). Also synthetic, learnable batches."""
import torch
from torch import nn


class TinyLM(nn.Module):
    """Embedding -> LSTM (hidden state kept and detached between calls) -> dropout -> tied decoder."""

    def __init__(self, vocab_sz: int = 16, emb: int = 8, hid: int = 16, p: float = 0.2):
        super().__init__()
        self.encoder = nn.Embedding(vocab_sz, emb)
        self.rnn = nn.LSTM(emb, hid, batch_first=True)
        self.proj = nn.Linear(hid, emb)
        self.drop = nn.Dropout(p)
        self.decoder = nn.Linear(emb, vocab_sz)
        self.decoder.weight = self.encoder.weight  # tied, appears once in param_groups
        self.hidden = None

    def reset(self):
        self.hidden = None

    def forward(self, x):  # x (bs, sl) int64
        emb = self.drop(self.encoder(x))  # (bs, sl, emb)
        if self.hidden is not None and self.hidden[0].shape[1] != x.shape[0]:
            self.hidden = None
        h, hidden = self.rnn(emb, self.hidden)  # (bs, sl, hid)
        self.hidden = tuple(t.detach() for t in hidden)
        raw = self.proj(h)  # (bs, sl, emb)
        out = self.drop(raw)
        return self.decoder(out), raw, out  # (bs, sl, vocab), (bs, sl, emb) x2

    def param_groups(self):
        return [list(self.rnn.parameters()) + list(self.proj.parameters()),
                [self.encoder.weight, self.decoder.bias]]


class TinyClassifier(nn.Module):
    """Embedding -> LSTM -> [last, max, mean] pool -> BatchNorm1d -> Linear; groups [emb], [rnn], [head]."""

    def __init__(self, vocab_sz: int = 16, emb: int = 8, hid: int = 8, n_class: int = 2):
        super().__init__()
        self.encoder = nn.Embedding(vocab_sz, emb)
        self.rnn = nn.LSTM(emb, hid, batch_first=True)
        self.head = nn.Sequential(nn.BatchNorm1d(3 * hid), nn.Dropout(0.1), nn.Linear(3 * hid, n_class))

    def reset(self):
        pass

    def forward(self, x):
        out, _ = self.rnn(self.encoder(x))  # (bs, sl, hid)
        pooled = torch.cat([out[:, -1], out.max(1).values, out.mean(1)], 1)  # (bs, 3*hid)
        return self.head(pooled), out, out

    def param_groups(self):
        return [list(self.encoder.parameters()), list(self.rnn.parameters()), list(self.head.parameters())]


def lm_batches(n_batches: int = 6, bs: int = 4, sl: int = 8, vocab_sz: int = 16, seed: int = 0):
    """Contiguous streams of the rule `next = (3*cur + 1) % vocab` with random starts: learnable."""
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, vocab_sz, (bs,), generator=g)
    stream = [starts]
    for _ in range(n_batches * sl):
        stream.append((3 * stream[-1] + 1) % vocab_sz)
    stream = torch.stack(stream, 1)  # (bs, n_batches*sl + 1)
    return [(stream[:, i * sl:(i + 1) * sl], stream[:, i * sl + 1:(i + 1) * sl + 1]) for i in range(n_batches)]


def clas_batches(n_batches: int = 4, bs: int = 8, sl: int = 6, vocab_sz: int = 16, seed: int = 0):
    """Label 1 when the sequence holds more tokens >= vocab/2 than below: learnable."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        x = torch.randint(0, vocab_sz, (bs, sl), generator=g)
        out.append((x, ((x >= vocab_sz // 2).sum(1) * 2 > sl).long()))
    return out


class ShuffledBatches:
    """Re-iterable batches in an order drawn from torch's global RNG each epoch (as a shuffling loader);
    raises KeyboardInterrupt at batch `interrupt_at = (epoch, i)` to simulate Ctrl-C."""

    def __init__(self, batches, interrupt_at=None):
        self.batches, self.interrupt_at, self.epoch = batches, interrupt_at, -1

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        self.epoch += 1
        for i, j in enumerate(torch.randperm(len(self.batches)).tolist()):
            if self.interrupt_at == (self.epoch, i):
                raise KeyboardInterrupt
            yield self.batches[j]


class SeededBatches(ShuffledBatches):
    """Like awdlstm.data.LMLoader: its own seed, an epoch counter advanced by each pass, and `set_epoch(n)`."""

    def __init__(self, batches, seed=0, interrupt_at=None):
        super().__init__(batches, interrupt_at)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        order = torch.randperm(len(self.batches), generator=torch.Generator().manual_seed(self.seed + self.epoch))
        self.epoch += 1
        for i, j in enumerate(order.tolist()):
            if self.interrupt_at == (self.epoch - 1, i):
                raise KeyboardInterrupt
            yield self.batches[j]
