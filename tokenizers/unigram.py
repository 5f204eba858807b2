"""Training a unigram language model of subword pieces, as SentencePiece does (Kudo, 2018).

Chapter 10, "Subword Tokenization": fastai's ``SubwordTokenizer`` is SentencePiece's unigram model. A unigram
model gives every piece a probability; a word is split into the pieces whose product of probabilities is the
largest. Training picks the pieces:

1. **Seed**: every character, plus every substring (2 to ``max_piece_length`` characters) that occurs at least
   twice, the ``seed_size`` largest by ``count * length``; initial score ``log(count * length / total)``.
2. **EM**: the E-step counts how often each piece is expected to appear, summing over *all* segmentations of
   every segment weighted by their probability (forward-backward on the segment's lattice); the M-step sets
   ``score = digamma(count) - digamma(total)`` (SentencePiece's Bayesian estimate) and drops pieces expected
   fewer than 0.5 times. Two EM steps per round.
3. **Prune**: removing a piece re-segments its occurrences in the best (Viterbi) segmentation with the piece's
   own second-best segmentation; the likelihood lost is the piece's loss. Keep the 75% with the largest loss
   (characters are always kept) and repeat 2-3 until 10% above the target size; then keep the best scored.

The input is a table of *segments* with their counts (``subword.py`` makes them: an optional leading space,
the ``▁`` of a word, then a run of characters of one class), so each distinct word is processed once.

Speed (pure numpy): substrings are numbered by sorting keys that pack their characters into uint64 words (no
Python loop over substrings); the segments are grouped by length, and each group's lattices are one dense array
``E (n, L, M)``: ``E[w, k-1, l-1]`` is the id of the piece ``segment[k-l:k]`` (length ``l``, ending at ``k``) or
``NONE``. Forward-backward and Viterbi run over a whole group at once, one numpy step per position ``k``.
Forward-backward multiplies probabilities instead of adding logs (no exp/log in the loop): training segments are
cut to at most 24 characters, and a product of 24 piece probabilities (each > 1e-9) is far from underflowing.
The E-step only visits the lattice entries whose piece is still in the vocab (``_Lattices.cells``).

Differences from SentencePiece: seeds come from counting substrings of the distinct segments instead of a suffix
array (the same substrings and counts); no NFKC normalisation and no merging of whitespace (we round-trip text
exactly); characters outside the coverage become bytes instead of ``<unk>``; ties are broken by the pieces' order.
On the chapter's 2,000 IMDb reviews the result is close to SentencePiece 0.2's (tokens per review 200: 793 vs 782,
1,000: 458 vs 457, 10,000: 308 vs 314).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

MAX_TRAIN_SEGMENT = 24  # longer training segments are cut into pieces this long (see the module docstring)
_BUCKETS = (4, 8, 12, 16, 20, 24)  # segments are grouped by length, each group padded to its bound


@dataclass
class _Lattices:
    """Lattices of a group of strings: ``E (n, L, M)`` piece ids by (end - 1, length - 1); NONE where absent."""

    E: np.ndarray  # (n, L, M) int64
    lens: np.ndarray  # (n,) int64
    freq: np.ndarray  # (n,) float64
    cells: np.ndarray | None = None  # flat indices of the entries of E that are pieces still in the vocab

    def compact(self, alive: np.ndarray) -> None:
        """Remember which lattice entries are alive pieces, so the E-step skips the others."""
        flat = self.E.ravel()
        cells = np.nonzero(alive[flat])[0] if self.cells is None else self.cells[alive[flat[self.cells]]]
        self.cells = cells


def digamma(x: np.ndarray) -> np.ndarray:
    """The digamma function (x > 0): recurrence up to x >= 6, then the asymptotic series."""
    x = np.array(x, dtype=np.float64)
    res = np.zeros_like(x)
    for _ in range(6):
        small = x < 6
        res[small] -= 1.0 / x[small]
        x[small] += 1.0
    x2 = 1.0 / (x * x)
    return res + np.log(x) - 0.5 / x - x2 * (1 / 12 - x2 * (1 / 120 - x2 * (1 / 252 - x2 * (1 / 240 - x2 / 132))))


def _expected_counts(lat: _Lattices, P: np.ndarray) -> np.ndarray:
    """E-step on one group: expected count of every piece over all segmentations (forward-backward)."""
    n, L, M = lat.E.shape
    ids = lat.E.ravel()[lat.cells]  # the pieces present in the lattices
    PE = np.zeros(n * L * M)
    PE[lat.cells] = P[ids]
    PE = PE.reshape(n, L, M)  # (n, L, M): probability of the piece ending at k with length l
    alpha = np.zeros((n, L + 1))  # alpha[w, k]: total probability of segment[:k]
    alpha[:, 0] = 1.0
    for k in range(1, L + 1):  # pull from the starts k-1 ... k-m of the pieces ending at k
        m = min(k, M)
        alpha[:, k] = np.einsum("nm,nm->n", alpha[:, k - m:k][:, ::-1], PE[:, k - 1, :m])
    rows = np.arange(n)
    beta = np.zeros((n, L + 1))  # beta[w, k]: total probability of segment[k:]
    beta[rows, lat.lens] = 1.0
    for k in range(L, 0, -1):  # push beta[k] back to the starts of the pieces ending at k
        m = min(k, M)
        beta[:, k - m:k][:, ::-1] += PE[:, k - 1, :m] * beta[:, k:k + 1]
    Z = alpha[rows, lat.lens]  # (n,)
    L1, LM = L + 1, L * M
    w, rest = np.divmod(lat.cells, LM)
    end, ln = np.divmod(rest, M)  # end - 1, length - 1
    a = alpha.ravel()[w * L1 + end - ln]  # alpha at the start of the piece
    b = beta.ravel()[w * L1 + end + 1]  # beta at its end
    post = a * P[ids] * b * (lat.freq / Z)[w]
    return np.bincount(ids, weights=post, minlength=len(P))


def _viterbi(lat: _Lattices, LP: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best segmentation of every string of a group: (score (n,), row of each piece used, id of that piece)."""
    n, L, M = lat.E.shape
    LPE = LP[lat.E]  # (n, L, M)
    rows = np.arange(n)
    best = np.full((n, L + 1), -np.inf)
    best[:, 0] = 0.0
    back = np.zeros((n, L + 1), dtype=np.int64)  # length of the last piece of the best segmentation of [:k]
    for k in range(1, L + 1):
        m = min(k, M)
        cand = best[:, k - m:k][:, ::-1] + LPE[:, k - 1, :m]  # (n, m)
        j = cand.argmax(1)
        back[:, k] = j + 1
        best[:, k] = cand[rows, j]
    score = best[rows, lat.lens]
    out_rows, out_ids = [], []
    r, pos = rows, lat.lens.copy()
    while r.size:
        ln = back[r, pos]
        out_rows.append(r)
        out_ids.append(lat.E[r, pos - 1, ln - 1])
        pos = pos - ln
        keep = pos > 0
        r, pos = r[keep], pos[keep]
    if not out_rows:  # an empty group
        return score, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return score, np.concatenate(out_rows), np.concatenate(out_ids)


def _index(segments: dict[str, int], max_len: int):
    """Give every distinct substring (up to ``max_len`` chars) of the segments an id, count it, lay out lattices.

    Vectorized: a substring is packed into a few uint64 words (``bits`` per character code, zero-padded), so
    that equal substrings have equal keys; sorting the keys numbers them. Returns (length of each substring,
    its count, its first occurrence (group, row, end), the lattice groups, the segments of each group).
    """
    alphabet = sorted(set().union(*segments))
    code = {c: i + 1 for i, c in enumerate(alphabet)}  # 0 = padding
    bits = max(1, len(alphabet).bit_length())
    per_word = 64 // bits  # characters per uint64 word
    n_words = -(-max_len // per_word)
    by_group: dict[int, list[str]] = {b: [] for b in _BUCKETS}
    for seg in segments:
        by_group[next(b for b in _BUCKETS if len(seg) <= b)].append(seg)
    keys, cells, groups = [], [], []
    for g, bound in enumerate(_BUCKETS):
        segs, M = by_group[bound], min(bound, max_len)
        C = np.array([[code[c] for c in s] + [0] * (bound - len(s)) for s in segs], dtype=np.uint64)
        C = C.reshape(len(segs), bound)  # (n, L) character codes
        lens = np.array([len(s) for s in segs], dtype=np.int64)
        freq = np.array([segments[s] for s in segs], dtype=np.float64)
        K = np.zeros((len(segs), bound, n_words), dtype=np.uint64)  # key of segment[start:start+length]
        for ln in range(1, M + 1):
            word, pos = divmod(ln - 1, per_word)
            K[:, : bound - ln + 1, word] |= C[:, ln - 1:] << np.uint64(bits * (per_word - 1 - pos))
            w, start = np.nonzero(np.arange(bound - ln + 1)[None, :] + ln <= lens[:, None])
            keys.append(K[w, start])
            cells.append(np.stack([np.full_like(w, g), w, start + ln, np.full_like(w, ln)], 1).astype(np.int32))
        groups.append(_Lattices(np.full((len(segs), bound, M), -1, dtype=np.int64), lens, freq))
    keys, cells = np.concatenate(keys), np.concatenate(cells)  # (N, n_words), (N, 4): group, row, end, length
    order = np.lexsort(keys.T[::-1])  # stable: equal keys keep their first occurrence first
    new = np.ones(len(order), dtype=bool)
    new[1:] = (keys[order[1:]] != keys[order[:-1]]).any(1)
    ids = np.empty(len(order), dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    for g, lat in enumerate(groups):
        c = cells[:, 0] == g
        lat.E[cells[c, 1], cells[c, 2] - 1, cells[c, 3] - 1] = ids[c]
    freq = np.concatenate([lat.freq for lat in groups])
    offsets = np.cumsum([0] + [len(lat.freq) for lat in groups])
    counts = np.bincount(ids, weights=freq[offsets[cells[:, 0]] + cells[:, 1]])
    first = cells[order[new]].astype(np.int64)  # ids are numbered in the order of the substrings (code points)
    return first[:, 3], counts, first[:, :3], groups, [by_group[b] for b in _BUCKETS]


def _piece_lattices(pieces, first, occ, groups, NONE) -> list[tuple[np.ndarray, _Lattices]]:
    """Lattice of every multi-character piece over its own substrings, without the piece itself."""
    out = []
    lengths = np.array([len(p) for p in pieces])
    for L in range(2, int(lengths.max(initial=1)) + 1):
        ids = np.nonzero(lengths == L)[0]
        ids = ids[ids >= first]
        if not ids.size:
            continue
        blocks, order = [], []
        for g, lat in enumerate(groups):
            sel = ids[occ[ids, 0] == g]
            if sel.size:
                w, k = occ[sel, 1], occ[sel, 2]
                blocks.append(lat.E[w[:, None], (k - L)[:, None] + np.arange(L)[None, :], :L])  # (s, L, L)
                order.append(sel)
        E = np.concatenate(blocks)
        # length l ending at internal position j is inside the piece only if l <= j; the full piece is excluded
        E[:, np.triu_indices(L, 1)[0], np.triu_indices(L, 1)[1]] = NONE
        E[:, L - 1, L - 1] = NONE
        ids = np.concatenate(order)
        out.append((ids, _Lattices(E, np.full(len(ids), L, dtype=np.int64), np.ones(len(ids)))))
    return out


def _prune(groups, piece_lats, LP, alive, is_char, target: int, shrink: float) -> np.ndarray:
    """SentencePiece's pruning: keep the pieces whose removal would cost the corpus the most likelihood."""
    V = len(LP) - 1
    freq = np.zeros(V + 1)
    for lat in groups:
        _, rows, ids = _viterbi(lat, LP)
        freq += np.bincount(ids, weights=lat.freq[rows], minlength=V + 1)
    total, vsum = freq[:V].sum(), sum(lat.freq.sum() for lat in groups)
    loss = np.full(V, -np.inf)
    droppable = np.zeros(V, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for ids, lat in piece_lats:
            sel = alive[ids]
            if not sel.any():
                continue
            p = ids[sel]
            sub = _Lattices(lat.E[sel], lat.lens[sel], lat.freq[sel])
            alt_score, rows, alt = _viterbi(sub, LP)
            fp = freq[p]
            n_alt = np.bincount(rows, minlength=len(p))
            logsum_alt = np.log(total + fp * (n_alt - 1))
            lp_alt = np.bincount(rows, weights=np.log(freq[alt] + fp[rows]), minlength=len(p)) - n_alt * logsum_alt
            loss[p] = fp / vsum * (np.log(fp) - math.log(total) - lp_alt)
            # never used in the Viterbi segmentation, or the piece itself is better split: remove it
            droppable[p] = (fp == 0) | (alt_score > LP[p])
    candidates = np.nonzero(alive[:V] & ~is_char & ~droppable)[0]
    keep = np.zeros(V + 1, dtype=bool)
    keep[:V] = alive[:V] & is_char
    n_new = max(target, int(shrink * alive[:V].sum())) - int(keep.sum())
    order = np.lexsort((candidates, -loss[candidates]))
    keep[candidates[order[:max(n_new, 0)]]] = True
    return keep


def train_unigram(segments: dict[str, int], n_pieces: int, max_piece_length: int = 16,
                  seed_size: int = 1_000_000, shrinking_factor: float = 0.75, n_sub_iterations: int = 2,
                  progress: bool = True) -> list[tuple[str, float]]:
    """Train a unigram LM (SentencePiece's algorithm) on ``{segment: count}``; returns ``n_pieces`` (piece, score).

    Every character of the segments is kept (they are the required characters); the rest of the budget goes
    to the multi-character pieces with the best scores.
    """
    segs: dict[str, int] = {}
    for s, n in segments.items():  # cut long segments so that forward-backward cannot underflow
        for i in range(0, len(s), MAX_TRAIN_SEGMENT):
            segs[s[i:i + MAX_TRAIN_SEGMENT]] = segs.get(s[i:i + MAX_TRAIN_SEGMENT], 0) + n
    lengths, counts, occ, groups, group_segs = _index(segs, max_piece_length)
    chars = np.nonzero(lengths == 1)[0]
    if len(chars) > n_pieces:
        raise ValueError(f"vocab too small: the training texts need {len(chars)} characters, but only "
                         f"{n_pieces} pieces are left for them; raise vocab_size or lower character_coverage")
    multi = np.nonzero((lengths > 1) & (counts >= 2))[0]
    multi = multi[np.lexsort((multi, -counts[multi] * lengths[multi]))][:seed_size]
    chars = chars[np.lexsort((chars, -counts[chars]))]
    seed = np.concatenate([chars, multi])  # new id -> substring id; characters first
    V = len(seed)
    remap = np.full(len(lengths) + 1, V, dtype=np.int64)  # substring id (-1 = none) -> new id, NONE = V
    remap[seed] = np.arange(V)
    for lat in groups:
        lat.E = remap[lat.E]
    pieces = [group_segs[g][w][k - ln:k] for (g, w, k), ln in zip(occ[seed].tolist(), lengths[seed].tolist(), strict=True)]
    is_char = np.zeros(V, dtype=bool)
    is_char[: len(chars)] = True
    piece_lats = _piece_lattices(pieces, len(chars), occ[seed], groups, V)
    score = np.where(is_char, counts[seed], counts[seed] * lengths[seed])
    LP = np.append(np.log(score) - math.log(score.sum()), -np.inf)  # LP[V] = -inf: the NONE entry
    alive = np.append(np.ones(V, dtype=bool), False)
    for lat in groups:
        lat.compact(alive)
    desired = max(int(n_pieces * 1.1), len(chars))
    n_rounds = max(1, math.ceil(math.log(max(desired, 1) / V) / math.log(shrinking_factor)) + 1) if V > desired else 1
    bar = tqdm(total=n_rounds, desc="subword: EM rounds", disable=not progress, leave=False)
    while True:
        for _ in range(n_sub_iterations):
            P = np.exp(LP)
            expected = sum(_expected_counts(lat, P) for lat in groups)[:V]
            keep = alive[:V] & ((expected >= 0.5) | is_char)
            f = np.where(is_char, np.maximum(expected, 0.5), expected)
            LP = np.full(V + 1, -np.inf)
            LP[:V][keep] = digamma(f[keep]) - digamma(f[keep].sum())
            alive[:V] = keep
            for lat in groups:
                lat.compact(alive)
        bar.update(1)
        if alive[:V].sum() <= desired:
            break
        alive = _prune(groups, piece_lats, LP, alive, is_char, desired, shrinking_factor)
        LP[~alive] = -np.inf
        for lat in groups:
            lat.compact(alive)
    bar.close()
    multi_alive = np.nonzero(alive[:V] & ~is_char)[0]
    best = multi_alive[np.lexsort((multi_alive, -LP[multi_alive]))][: n_pieces - len(chars)]
    final = np.concatenate([np.arange(len(chars)), best])
    final = final[np.lexsort((final, -LP[final]))]
    return [(pieces[i], float(LP[i])) for i in final]
