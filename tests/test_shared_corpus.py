"""A corpus streamed once and shared (awdlstm/shared_corpus.py): two torchrun "machines" on this host
(`--nnodes 2`, a node rank each, c10d rendezvous on localhost, gloo) build it, the ranks splitting the blocks
on a shared folder or each machine building its own, and train the same language model as one process that
reads its texts into memory; and one process streamed trains exactly as in memory."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from run_scripts import SAMPLE, main

from awdlstm.data.sources import read_csv
from awdlstm.data.text_source import TextSource

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--preset", "tiny", "--drop-mult", "0", "--lm-docs", "120", "--threads", "1", "--quiet", "--seed", "0",
        "--n-samples", "0", "--csv", str(SAMPLE)]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _two_machines(tmp: Path, caches: tuple[Path, Path]) -> Path:
    """finetune_lm.py --stream on 2 nodes of 1 process; node r uses caches[r]. Returns the run folder."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "AWDLSTM_BLOCK_DOCS": "50"}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(k, None)
    port, run = _port(), tmp / "run"
    procs = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(r),
                               "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{port}",
                               str(ROOT / "scripts" / "finetune_lm.py"), *ARGS, "--stream", "--run-dir", str(run),
                               "--cache-dir", str(caches[r])], cwd=tmp, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    return run


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    """The reference: one process, texts read into memory."""
    tmp = tmp_path_factory.mktemp("one")
    assert main("finetune_lm", *ARGS, "--no-stream", "--run-dir", tmp / "run", "--cache-dir", tmp / "cache")[0] == 0
    return tmp / "run"


def _weights(run: Path) -> dict:
    return torch.load(run / "lm.pt", weights_only=True)


def _same_model(run: Path, ref: Path, exact: bool) -> None:
    assert json.loads((run / "vocab.json").read_text()) == json.loads((ref / "vocab.json").read_text())
    a, b = _weights(run), _weights(ref)
    assert a.keys() == b.keys()
    for k in a:
        if exact:
            assert torch.equal(a[k], b[k]), k
        else:  # two ranks: the mean of the shares' gradients, summed in another order
            torch.testing.assert_close(a[k], b[k], atol=2e-5, rtol=1e-4)
    ra, rb = (json.loads((r / "config.json").read_text())["results"] for r in (run, ref))
    assert (ra["n_tokens"], ra["vocab_size"], ra["n_docs"]) == (rb["n_tokens"], rb["vocab_size"], rb["n_docs"]) \
        and ra["n_tokens"] > 20_000


def test_one_process_streamed_trains_exactly_as_in_memory(one, tmp_path):
    assert main("finetune_lm", *ARGS, "--stream", "--run-dir", tmp_path / "run", "--cache-dir", tmp_path / "c")[0] == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["stream"] is True
    _same_model(tmp_path / "run", one, exact=True)
    (folder,) = (tmp_path / "c").glob("corpus-*")
    assert json.loads((folder / "manifest.json").read_text())["n_docs"] == 400


def test_two_machines_sharing_a_folder_split_the_build_and_train_as_one_process(one, tmp_path):
    cache = tmp_path / "shared"
    run = _two_machines(tmp_path, (cache, cache))
    (folder,) = cache.glob("corpus-*")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["built_by"], manifest["n_blocks"]) == (2, 8)  # the ranks split 8 blocks of 50 documents
    _same_model(run, one, exact=False)


def test_two_machines_without_a_shared_folder_each_build_once(one, tmp_path):
    caches = (tmp_path / "node0", tmp_path / "node1")
    run = _two_machines(tmp_path, caches)
    for c in caches:
        (folder,) = c.glob("corpus-*")
        assert json.loads((folder / "manifest.json").read_text())["built_by"] == 1
    _same_model(run, one, exact=False)


def test_a_text_file_one_document_a_line_streamed_or_not(tmp_path):
    """--text FILE (a plain text file, one document per line, blank lines skipped): the streamed build and the
    in-memory read train the same model, from the same 400 documents."""
    texts = [" ".join(t.split()) for t in read_csv(SAMPLE, label_col=None).texts]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(texts[:200]) + "\n\n  \n" + "\r\n".join(texts[200:]) + "\n", encoding="utf-8")
    args = [*ARGS[:-2], "--text", str(path)]
    for how in ("stream", "no-stream"):
        assert main("finetune_lm", *args, f"--{how}", "--run-dir", tmp_path / how, "--cache-dir", tmp_path / "c")[0] == 0
    _same_model(tmp_path / "stream", tmp_path / "no-stream", exact=True)
    assert "s streaming the corpus)" in (tmp_path / "stream" / "log.txt").read_text()  # its build time is said
    assert main("finetune_lm", *args, "--stream", "--epochs", "0", "--run-dir", tmp_path / "again", "--cache-dir",
                tmp_path / "c")[0] == 0
    assert "(the streamed corpus reused)" in (tmp_path / "again" / "log.txt").read_text()
    source = json.loads((tmp_path / "stream" / "config.json").read_text())["source"]
    assert source["kind"] == "text" and json.loads((tmp_path / "stream" / "config.json").read_text())["stream"]
    (folder,) = (tmp_path / "c").glob("corpus-*")
    assert json.loads((folder / "manifest.json").read_text())["n_docs"] == 400
    src = TextSource("text", str(path))
    assert src.read(labelled=False).texts == texts and src.read(labelled=False).names[200] == f"{path}:203"
    with pytest.raises(ValueError, match="a plain text file has no labels"):
        src.read(labelled=True)
