"""fit under torchrun (DDP, gloo on the CPU) matches the one-process run; the per-rank shards of a TensorLoader."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from esc_course import TensorLoader, distributed

ROOT = Path(__file__).resolve().parents[1]


def test_shards_cover_every_global_batch_once_with_equal_step_counts():
    x = torch.arange(50).float().unsqueeze(1)
    loader = TensorLoader(x, torch.arange(50), batch_size=16, generator=torch.Generator().manual_seed(0))
    order = [yb.tolist() for _, yb in TensorLoader(x, torch.arange(50), 16,
                                                    generator=torch.Generator().manual_seed(0))]
    shards = [distributed.ShardedLoader(loader, r, 3) for r in range(3)]
    per_rank = []
    for s in shards:
        loader.generator.manual_seed(0)  # every rank draws the same order from the same seed
        per_rank.append([yb.tolist() for _, yb in s])
    assert len({len(b) for b in per_rank}) == 1  # the same number of steps on every rank
    for step, parts in enumerate(zip(*per_rank)):
        assert sorted(sum(parts, [])) == sorted(order[step])  # rank shards of global batch `step`
    assert len(per_rank[0]) == 3  # 50 = 3 x 16 + 2: the last batch, smaller than 3 ranks, is dropped
    assert [len(s) for s in shards] == [3, 3, 3]
    val = []
    for r in (0, 2):
        loader.generator.manual_seed(0)
        val.append([yb.tolist() for _, yb in distributed.ShardedLoader(loader, r, 3, drop_small=False)])
    assert len(val[0]) == 4 and len(val[1]) == 3  # kept (for evaluation): rank 0 gets 1 of the 2, rank 2 none
    assert [len(distributed.ShardedLoader(loader, r, 3, drop_small=False)) for r in (0, 1, 2)] == [4, 4, 3]


def test_outside_torchrun_nothing_is_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.launched() and not distributed.active()
    assert distributed.rank() == 0 and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.setup().type in ("cpu", "cuda")
    assert not distributed.active()
    loader = TensorLoader(torch.zeros(4, 1), torch.zeros(4))
    assert distributed.shard(loader) is loader
    t = torch.ones(3)
    assert distributed.all_reduce_sum(t) is t and t.tolist() == [1, 1, 1]


@pytest.mark.parametrize("rank, writes", [("0", True), ("1", False)])
def test_only_rank_zero_writes_a_labs_results(rank, writes, tmp_path, monkeypatch):
    """Under torchrun every process runs the lab; one results.json and one set of figures, from rank 0."""
    import time

    from esc_course.runs import LabResult, finish

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", rank)
    assert distributed.launched() and not distributed.active()  # torchrun's variables, no process group joined
    assert distributed.is_main() is writes
    result = finish(LabResult(lab="xor", config={"seed": 0}, metrics={"accuracy": 1.0}), tmp_path / "run",
                    time.perf_counter())
    assert result.env["torch"] == torch.__version__  # every rank still gets the stamped result back
    assert (tmp_path / "run" / "results.json").exists() is writes


SCRIPT = r"""
import json, sys
import torch
from torch import nn
from esc_course import TensorLoader, distributed, fit, seed_everything
from esc_course.data.toy import blobs
from esc_course.models import MLP

out, ckpt = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
seed_everything(0)
x, y = blobs(n=512, centers=3, std=1.0, seed=0)
xv, yv = blobs(n=130, centers=3, std=1.0, seed=1)
model = MLP(2, hidden=(32,), out_features=3)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
hist = fit(model, TensorLoader(x, y, 64, generator=torch.Generator().manual_seed(0)),
           TensorLoader(xv, yv, 50, shuffle=False), loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=5,
           progress=False, checkpoint_dir=ckpt)
rank = distributed.rank()
result = {"world": distributed.world_size(), "backend": torch.distributed.get_backend() if distributed.active()
          else None, "history": {k: v for k, v in hist.to_dict().items() if k != "seconds"},
          "params": torch.cat([p.detach().reshape(-1) for p in model.parameters()]).tolist()}
with open(f"{out}.rank{rank}.json", "w") as f:
    json.dump(result, f)
distributed.cleanup()
"""


def launch(tmp_path, name, nproc):
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    args = [str(script), str(tmp_path / name), str(tmp_path / f"ckpt_{name}")]
    cmd = [sys.executable, *args] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**env, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    assert res.returncode == 0, res.stderr[-3000:]
    return [json.loads((tmp_path / f"{name}.rank{r}.json").read_text()) for r in range(nproc)]


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(tmp_path):
    from esc_course.checkpoint import LAST, load

    (one,) = launch(tmp_path, "single", 1)
    two = launch(tmp_path, "ddp", 2)
    assert one["world"] == 1 and one["backend"] is None
    assert all(r["world"] == 2 and r["backend"] == "gloo" for r in two)
    assert two[0]["history"] == two[1]["history"]  # metrics reduced across ranks: every rank reports the same
    assert two[0]["params"] == two[1]["params"]  # DDP keeps the replicas identical
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert two[0]["history"][key] == pytest.approx(one["history"][key], rel=1e-4, abs=1e-6), key
    assert torch.allclose(torch.tensor(two[0]["params"]), torch.tensor(one["params"]), atol=1e-4)
    ckpt = load(tmp_path / "ckpt_ddp" / LAST)  # written once, by rank 0
    assert ckpt.counters["epoch"] == 5
    assert [p.name for p in (tmp_path / "ckpt_ddp").iterdir()] == [LAST]
