"""fit(checkpoint_dir=..., resume=True): an interrupted run, resumed, ends exactly where the uninterrupted one does."""

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from esc_course import TensorLoader, fit, seed_everything
from esc_course.checkpoint import LAST, CheckpointError, load
from esc_course.data.toy import blobs
from esc_course.models import MLP
from esc_course.train import NonFiniteLossError

from esc_testutil import assert_same

ROOT = Path(__file__).resolve().parents[1]
EPOCHS, STEPS = 6, 7  # 200 samples in batches of 32: 7 training steps, then one validation batch per epoch


class HostNoise(nn.Module):
    """Adds noise from numpy's and python's global generators while training, so their states matter too."""

    def forward(self, x):
        if self.training:
            noise = np.random.randn(*x.shape).astype("float32")
            x = x + 0.05 * torch.from_numpy(noise) + 0.01 * random.random()
        return x


def build(seed, generator_seed=0, use_generator=True):
    torch.manual_seed(seed)
    model = nn.Sequential(HostNoise(), MLP(2, hidden=(16,), out_features=3, dropout=0.2, batch_norm=True))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    x, y = blobs(n=200, centers=3, std=1.0, seed=0)
    gen = torch.Generator().manual_seed(generator_seed) if use_generator else None
    return model, opt, sched, TensorLoader(x, y, 32, generator=gen), TensorLoader(x[:64], y[:64], 64, shuffle=False)


class Recorder:
    """A cross-entropy loss that records every batch's labels (the batch order) and can be interrupted."""

    def __init__(self, interrupt_at=None):
        self.seen, self.interrupt_at = [], interrupt_at

    def __call__(self, out, y):
        self.seen.append(y.tolist())
        if len(self.seen) == self.interrupt_at:
            raise KeyboardInterrupt  # Ctrl-C in the middle of a step
        return nn.functional.cross_entropy(out, y)


def run(folder=None, resume=False, interrupt_at=None, every=None, seed=0, generator_seed=0, use_generator=True,
        global_seed=0):
    seed_everything(global_seed)
    model, opt, sched, train, val = build(seed, generator_seed, use_generator)
    loss = Recorder(interrupt_at)
    try:
        hist = fit(model, train, val, loss_fn=loss, optimizer=opt, scheduler=sched, epochs=EPOCHS, progress=False,
                   checkpoint_dir=folder, resume=resume, checkpoint_every=every, checkpoint_seconds=0)
    except KeyboardInterrupt:
        return None, loss.seen
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in hist.rows]
    return (model.state_dict(), opt.state_dict(), sched.state_dict(), rows), loss.seen


@pytest.fixture(scope="module")
def reference():
    return run()


@pytest.mark.parametrize("every, interrupt_epoch, interrupt_step, use_generator", [
    (None, 4, 2, True),   # killed in epoch 4: resumes from the end of epoch 3
    (None, 2, 7, False),  # shuffled by torch's global generator instead of the loader's own
    (3, 4, 6, True),      # checkpoints every 3 steps: resumes inside epoch 4, after its step 3
    (2, 5, 1, False),     # ... after epoch 4's last step-checkpoint (step 6), with the global generator
])
def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path, reference, every, interrupt_epoch,
                                                         interrupt_step, use_generator):
    if not use_generator:
        reference = run(use_generator=False)
    per_epoch = STEPS + 1
    at = (interrupt_epoch - 1) * per_epoch + interrupt_step
    first, seen = run(tmp_path, interrupt_at=at, every=every, use_generator=use_generator)
    assert first is None and seen == reference[1][:at]
    # a fresh process state: other weights, other loader seed, other global seed; the checkpoint restores them all
    resumed, seen = run(tmp_path, resume=True, every=every, seed=99, generator_seed=5, global_seed=123,
                        use_generator=use_generator)
    done_steps = (interrupt_step - 1) // every * every if every else 0
    start = (interrupt_epoch - 1) * per_epoch + done_steps
    assert seen == reference[1][start:], "the resumed run must see the same batches in the same order"
    assert_same(resumed, reference[0])


def test_checkpointing_does_not_change_training(tmp_path, reference):
    with_checkpoints, _ = run(tmp_path, every=2)
    assert_same(with_checkpoints, reference[0])
    ckpt = load(tmp_path / LAST)
    assert ckpt.counters == {"epoch": EPOCHS, "step": 0, "epochs": EPOCHS, "stopped": False}
    assert len(ckpt.history) == EPOCHS


def test_a_finished_run_resumes_to_its_end_without_training(tmp_path, reference):
    run(tmp_path)
    resumed, seen = run(tmp_path, resume=True, seed=5)
    assert seen == []  # no step was taken
    assert_same(resumed, reference[0])


def test_epochs_is_the_total_so_a_longer_run_continues(tmp_path):
    seed_everything(0)
    model, opt, sched, train, val = build(0)
    fit(model, train, val, loss_fn=nn.functional.cross_entropy, optimizer=opt, scheduler=sched, epochs=3,
        progress=False, checkpoint_dir=tmp_path)
    model, opt, sched, train, val = build(1)
    hist = fit(model, train, val, loss_fn=nn.functional.cross_entropy, optimizer=opt, scheduler=sched, epochs=EPOCHS,
               progress=False, checkpoint_dir=tmp_path, resume=True)
    assert hist["epoch"] == list(range(1, EPOCHS + 1))
    model, opt, sched, train, val = build(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="past epochs=4"):
        fit(model, train, val, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=4, progress=False,
            checkpoint_dir=tmp_path, resume=True)
    assert_same(model.state_dict(), before)  # a refused checkpoint fills nothing in


def test_an_existing_checkpoint_is_never_overwritten_without_resume(tmp_path):
    run(tmp_path)
    before = (tmp_path / LAST).read_bytes()
    with pytest.raises(FileExistsError, match="resume=True"):
        run(tmp_path)
    assert (tmp_path / LAST).read_bytes() == before
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        run(None, resume=True)


def test_a_nan_epoch_leaves_the_last_good_checkpoint(tmp_path):
    x, y = torch.randn(64, 2), torch.randint(0, 2, (64,))
    model = MLP(2, hidden=(4,), out_features=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def poisoned(out, target):  # NaN from epoch 3 on
        calls.append(1)
        loss = nn.functional.cross_entropy(out, target)
        return loss * float("nan") if len(calls) > 2 * 4 else loss

    with pytest.raises(NonFiniteLossError, match="epoch 3, step 1"):
        fit(model, TensorLoader(x, y, 16), loss_fn=poisoned, optimizer=opt, epochs=5, progress=False,
            checkpoint_dir=tmp_path, checkpoint_every=2, checkpoint_seconds=0)
    ckpt = load(tmp_path / LAST, model=MLP(2, hidden=(4,), out_features=2))
    assert ckpt.counters["epoch"] == 2 and ckpt.counters["step"] == 0
    assert all(torch.isfinite(t).all() for t in ckpt.tensors.values())


def writes(monkeypatch):
    """The counters of every checkpoint fit writes, in order."""
    from esc_course import checkpoint

    written, save = [], checkpoint.save

    def counting(path, **kwargs):
        written.append(dict(kwargs["counters"]))
        return save(path, **kwargs)

    monkeypatch.setattr(checkpoint, "save", counting)
    return written


def test_checkpoint_writes_are_throttled_but_the_last_epoch_and_a_stop_are_always_written(tmp_path, monkeypatch):
    written = writes(monkeypatch)

    def go(folder, **kwargs):
        seed_everything(0)
        model, opt, sched, train, val = build(0)
        return fit(model, train, val, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=EPOCHS,
                   progress=False, checkpoint_dir=folder, **kwargs)

    go(tmp_path / "default")  # 30 s by default: these epochs take milliseconds, so only the last one is written
    assert [c["epoch"] for c in written] == [EPOCHS]
    written.clear()
    go(tmp_path / "every", checkpoint_seconds=0)
    assert [c["epoch"] for c in written] == list(range(1, EPOCHS + 1))
    written.clear()
    hist = go(tmp_path / "stop", on_epoch=lambda epoch, history: epoch == 3)  # an early stop is written
    assert len(hist) == 3 and written == [{"epoch": 3, "step": 0, "epochs": EPOCHS, "stopped": True}]
    written.clear()
    go(tmp_path / "steps", checkpoint_every=2)  # step checkpoints follow the same throttle
    assert [(c["epoch"], c["step"]) for c in written] == [(EPOCHS, 0)]
    written.clear()
    go(tmp_path / "steps0", checkpoint_every=3, checkpoint_seconds=0)  # 7 steps: after steps 3 and 6, then the end
    assert [(c["epoch"], c["step"]) for c in written][:3] == [(0, 3), (0, 6), (1, 0)]
    assert len(written) == 3 * EPOCHS


def test_the_throttle_counts_seconds_since_the_last_write(tmp_path, monkeypatch):
    from esc_course import resume

    clock = [0.0]
    monkeypatch.setattr(resume.time, "monotonic", lambda: clock[0])
    written = writes(monkeypatch)

    def slow_epoch(epoch, history):  # every epoch "takes" 4 s
        clock[0] += 4.0

    seed_everything(0)
    model, opt, sched, train, val = build(0)
    fit(model, train, val, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=EPOCHS, progress=False,
        on_epoch=slow_epoch, checkpoint_dir=tmp_path, checkpoint_seconds=10)
    assert [c["epoch"] for c in written] == [3, 6]  # 12 s after the start, then the last epoch


# --- a real crash: SIGKILL while a checkpoint is being written --------------------------------------------------

CHILD = r"""
import os, signal, stat, sys
import torch
from torch import nn
from safetensors.torch import save_file
from esc_course import TensorLoader, fit, seed_everything
from esc_course.data.toy import blobs
from esc_course.models import MLP

folder, kill_at, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(1)
if kill_at:
    real_fsync, written = os.fsync, []

    def fsync(fd):  # the kill_at-th checkpoint file: cut it in half, then die before it is renamed into place
        if stat.S_ISREG(os.fstat(fd).st_mode):
            written.append(fd)
            if len(written) == kill_at:
                path = os.readlink(f"/proc/self/fd/{fd}")
                os.truncate(path, os.path.getsize(path) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        return real_fsync(fd)

    os.fsync = fsync
seed_everything(0)
x, y = blobs(n=300, centers=3, std=1.0, seed=1)
model = MLP(2, hidden=(32,), out_features=3, dropout=0.1)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
fit(model, TensorLoader(x, y, 25, generator=torch.Generator().manual_seed(0)), loss_fn=nn.functional.cross_entropy,
    optimizer=opt, epochs=5, progress=False, checkpoint_dir=folder, resume=True, checkpoint_seconds=0)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
"""


def child(tmp_path, folder, kill_at, out):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.run([sys.executable, str(script), str(folder), str(kill_at), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc/self/fd")
def test_sigkill_while_writing_a_checkpoint_then_resume(tmp_path):
    from safetensors.torch import load_file

    killed = child(tmp_path, tmp_path / "run", 3, tmp_path / "never.safetensors")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert LAST in left and any(n.endswith(".tmp") for n in left), left  # the half-written file is still there
    assert load(tmp_path / "run" / LAST).counters["epoch"] == 2  # the previous checkpoint loads
    resumed = child(tmp_path, tmp_path / "run", 0, tmp_path / "resumed.safetensors")
    assert resumed.returncode == 0, resumed.stderr
    # the killed writer's temporary file is left alone (a writer never deletes another's), and is never read
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == left
    whole = child(tmp_path, tmp_path / "whole", 0, tmp_path / "whole.safetensors")
    assert whole.returncode == 0, whole.stderr
    a, b = load_file(tmp_path / "resumed.safetensors"), load_file(tmp_path / "whole.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads(json.dumps(load(tmp_path / "run" / LAST).counters))["epoch"] == 5


class BestLoss:
    """An on_epoch hook with state: the best validation loss and the weights it was reached with."""

    def __init__(self, model):
        self.model, self.best, self.weights = model, float("inf"), None

    def __call__(self, epoch, history):
        if history["val_loss"][-1] < self.best:
            self.best = history["val_loss"][-1]
            self.weights = {k: v.clone() for k, v in self.model.state_dict().items()}

    def state_dict(self):
        return {"best": self.best, "weights": self.weights}

    def load_state_dict(self, state):
        self.best, self.weights = state["best"], state["weights"]


def test_a_hook_with_state_is_checkpointed_with_the_run(tmp_path):
    def go(folder, resume=False, interrupt_at=None, seed=0):
        seed_everything(0)
        model, opt, sched, train, val = build(seed)
        hook = BestLoss(model)
        try:
            fit(model, train, val, loss_fn=Recorder(interrupt_at), optimizer=opt, epochs=EPOCHS, progress=False,
                on_epoch=hook, checkpoint_dir=folder, resume=resume, checkpoint_seconds=0)
        except KeyboardInterrupt:
            pass
        return hook

    whole = go(tmp_path / "whole")
    go(tmp_path / "cut", interrupt_at=4 * (STEPS + 1) + 3)
    resumed = go(tmp_path / "cut", resume=True, seed=7)
    assert resumed.best == whole.best and resumed.weights is not None
    assert_same(resumed.weights, whole.weights)


# --- a killed lab run, continued with `esc-course lab run NAME --resume` ------------------------------------------

def cli(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "esc_course.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def comparable(folder):
    data = json.loads((folder / "results.json").read_text())
    drop = lambda h: {k: v for k, v in h.items() if k != "seconds"}  # noqa: E731
    return data["metrics"], data["tables"], {k: drop(h) for k, h in data["history"].items()}


@pytest.mark.slow
def test_a_killed_lab_run_resumes_to_the_uninterrupted_results(tmp_path):
    import time

    killed = cli("lab", "run", "xor", "--quick", cwd=tmp_path)  # into runs/<time>/xor
    deadline = time.monotonic() + 600
    while not list(tmp_path.glob("runs/*/xor/checkpoints/model-mlp_2_2_1/last.safetensors")):
        assert killed.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    reference = cli("lab", "run", "xor", "--quick", "--out", str(tmp_path / "ref"), cwd=tmp_path)
    reference.communicate(timeout=600)
    (out,) = tmp_path.glob("runs/*/xor")
    assert not (out / "results.json").exists() and (out / "checkpoints" / "run.json").exists()

    started_over = cli("lab", "run", "xor", "--quick", "--out", str(out), cwd=tmp_path)
    _, err = started_over.communicate(timeout=300)
    assert started_over.returncode == 2 and "--resume" in err  # refused: it would start over the checkpoints
    other = cli("lab", "run", "xor", "--resume", "--quick", "--epochs=7", "--out", str(out), cwd=tmp_path)
    _, err = other.communicate(timeout=300)
    assert other.returncode == 2 and "other settings" in err and "epochs" in err

    resumed = cli("lab", "run", "xor", "--resume", cwd=tmp_path)  # finds the run and its settings by itself
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert not (out / "checkpoints").exists()  # finished: the checkpoints are gone
    assert comparable(out) == comparable(tmp_path / "ref")
