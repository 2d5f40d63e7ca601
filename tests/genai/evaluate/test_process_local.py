"""Metrics never synchronise behind the caller's back (DESIGN section 8).

In a multi-worker trial only rank 0 judges. A metric that gathers its state over the default
process group (torchmetrics does on ``compute()`` unless told not to) would wait there for ranks
that never come: a 2-process gloo group where only rank 0 computes FID, KID and every Judge metric
must return.
"""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from tests.conftest import free_port

TIMEOUT_S = 90


def only_rank_zero_judges(rank: int, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    from genai.data.feature_spec import architecture
    from genai.data.features import FeatureNet
    from genai.evaluate.images import image_metrics

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=2)
    if rank == 0:
        torch.manual_seed(0)
        arch = architecture({"shape": [8, 8], "labels": {"classes": list(range(10))}})
        net = FeatureNet(arch).eval().requires_grad_(False)
        metrics = image_metrics(net, torch.rand(200, 8, 8), torch.rand(200, 8, 8) * 0.5)
        with open(out, "w") as fh:
            fh.write(repr(sorted(metrics)))
    dist.barrier()  # the one collective both ranks reach: the end
    dist.destroy_process_group()


def test_only_rank_zero_computes_fid_and_the_group_returns(tmp_path):
    ctx = mp.get_context("spawn")
    port, out = free_port(), tmp_path / "metrics.txt"
    procs = [ctx.Process(target=only_rank_zero_judges, args=(r, port, str(out))) for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT_S)
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
        p.join()
    if hung:
        pytest.fail(f"rank(s) still waiting after {TIMEOUT_S}s: a metric synchronised")
    assert [p.exitcode for p in procs] == [0, 0]
    assert "'fid'" in out.read_text() and "'kid'" in out.read_text()
