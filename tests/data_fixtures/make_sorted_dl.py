"""Regenerate sorted_dl.json with fastai (reference environment only, never a dependency):

    /work/refenv/bin/python tests/data_fixtures/make_sorted_dl.py

Records the document order of fastai 2.8's SortedDL (shuffle=False, and shuffle=True after
np.random.seed(seed), with and without drop_last) for documents of known lengths.
"""
import json
from functools import partial
from pathlib import Path

import fastai
import numpy as np
import torch
from fastai.text.data import SortedDL, TensorText, pad_input_chunk

rs = np.random.RandomState(0)
lens = rs.randint(1, 40, size=211).tolist()  # 211 docs, bs=2 -> chunks of 100: 3 chunks, 106 batches
items = [(TensorText(torch.full((n,), 5 + i)), i) for i, n in enumerate(lens)]
cases = []
for shuffle, drop_last, seed in [(False, False, 0), (True, True, 7), (True, False, 7), (True, True, 2024)]:
    dl = SortedDL(items, bs=2, shuffle=shuffle, drop_last=drop_last,
                  before_batch=partial(pad_input_chunk, pad_idx=1, seq_len=5))
    np.random.seed(seed)
    order = np.concatenate([b[1].numpy() for b in dl]).tolist()
    cases.append({"bs": 2, "shuffle": shuffle, "drop_last": drop_last, "np_random_seed": seed,
                  "len_dl": len(dl), "order": order})
out = {"fastai_version": fastai.__version__, "lens": lens,
       "call": "np.random.seed(seed); [y for x, y in SortedDL([(TensorText(doc), i) ...], bs=2, shuffle=shuffle, "
               "drop_last=drop_last, before_batch=partial(pad_input_chunk, pad_idx=1, seq_len=5))]",
       "cases": cases}
Path(__file__).with_name("sorted_dl.json").write_text(json.dumps(out) + "\n")
