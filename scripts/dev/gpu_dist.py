"""Part `dist` of gpu_check.py: `torchrun --nproc_per_node 1` with nccl (gloo on a CPU). The worker, gpu_check.py
run again by torchrun with an internal flag, takes one LM step and one classifier step through
DistributedDataParallel and checks that they equal the same steps without it."""
from __future__ import annotations

import copy
import math
import os
import sys
from pathlib import Path

import torch
from gpu_check_common import (
    DRIVER,
    FULL,
    TINY,
    Checks,
    cmd_failure,
    ctx_for_child,
    maxdiff,
    read_json,
    rel_maxdiff,
    run_cmd,
    save_json,
)


def part_dist(ctx: dict) -> dict:
    """`torchrun --standalone --nproc_per_node 1` on this script's worker mode (below)."""
    out = Path(ctx["work"]) / "dist.json"
    out.unlink(missing_ok=True)
    ctx_file = Path(ctx["work"]) / "dist_ctx.json"
    save_json(ctx_file, ctx_for_child(ctx))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           DRIVER, ctx["out"], "--dist-worker", "--ctx", ctx_file, "--part-out", out]
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
    from awdlstm.data import ClasLoader
    from awdlstm.distributed import WithLoss
    from awdlstm.fused_loss import fused_lm_loss
    from awdlstm.loss import ar_tar
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
            inner = WithLoss(m, fused_lm_loss) if kind == "lm" else m  # the LM's loss inside the wrapped forward
            net = torch.nn.parallel.DistributedDataParallel(inner, device_ids=[dev.index] if cuda else None) \
                if wrapped else inner
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
