"""fit's fast paths: bf16 autocast, channels_last, fused optimizers, cuDNN autotuning, no host sync per step.

The CPU tests check the choices (everything stays fp32 and off on the CPU); the gpu tests check what happens on a
CUDA device (skipped without one).
"""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from esc_course import TensorLoader, fit, speed
from esc_course.metrics import accuracy
from esc_course.models import MLP
from esc_course.train import EpochStats, train_steps

CPU = torch.device("cpu")


class DtypeProbe(nn.Module):
    """Records the dtype of its Linear layer's output: bf16 under autocast."""

    def __init__(self, conv=False):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1) if conv else None
        self.fc = nn.Linear(4 * 4 * 4 if conv else 4, 3)
        self.seen = []

    def forward(self, x):
        if self.conv is not None:
            x = self.conv(x).flatten(1)
        out = self.fc(x)
        self.seen.append(("dtype", out.dtype))
        return out


def small_fit(model, device, x=None, **kw):
    x = torch.randn(32, 4) if x is None else x
    y = torch.arange(32) % 3
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return fit(model, TensorLoader(x, y, 8, device=device), loss_fn=F.cross_entropy, optimizer=opt, epochs=2,
               device=device, progress=False, **kw), opt


def test_auto_means_fp32_and_no_channels_last_on_the_cpu():
    assert speed.amp_dtype("auto", CPU) is None and speed.amp_dtype(False, CPU) is None
    assert speed.amp_dtype("bf16", CPU) == torch.bfloat16  # asked for explicitly
    assert not speed.use_channels_last("auto", DtypeProbe(conv=True), CPU)
    assert speed.use_channels_last(True, MLP(2), CPU)
    model = DtypeProbe()
    _, opt = small_fit(model, CPU)
    assert {v for k, v in model.seen if k == "dtype"} == {torch.float32}
    assert not speed.prefer_fused(opt, CPU) and opt.param_groups[0]["fused"] in (None, False)


def test_bf16_autocast_on_the_cpu_when_asked():
    torch.manual_seed(0)
    model = DtypeProbe()
    hist, _ = small_fit(model, CPU, amp="bf16")
    assert torch.bfloat16 in {v for k, v in model.seen if k == "dtype"}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32: autocast, not .half()
    assert 0 < hist["train_loss"][-1] < hist["train_loss"][0]  # it trained (fit raises on a NaN loss itself)


def test_cudnn_autotune_on_cuda_only_and_not_in_deterministic_mode():
    """The context only flips a flag, so the CUDA branch is checked here without a GPU."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        with speed.cudnn_autotune(CPU):
            assert torch.backends.cudnn.benchmark is False  # the CPU has no cuDNN to tune
        with speed.cudnn_autotune(torch.device("cuda")):
            assert torch.backends.cudnn.benchmark is True
        assert torch.backends.cudnn.benchmark is False  # put back
        torch.use_deterministic_algorithms(True)
        with speed.cudnn_autotune(torch.device("cuda")):
            assert torch.backends.cudnn.benchmark is False  # autotuning picks kernels by timing: not reproducible
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = before


def test_no_host_sync_inside_the_training_steps_on_the_cpu(monkeypatch):
    """Every way a tensor's value reaches Python raises during the steps; the epoch's one read comes after.
    (SGD: torch's own CPU Adam reads its step counter with .item(); on CUDA see the gpu test below.)"""
    torch.manual_seed(0)
    model = MLP(4, hidden=(16,), out_features=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = TensorLoader(torch.randn(256, 4), torch.arange(256) % 3, 32, shuffle=False)
    stats = EpochStats({"accuracy": accuracy})

    def read(*args, **kwargs):
        raise AssertionError("a tensor value was read inside the training steps")

    with monkeypatch.context() as patch:
        for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
            patch.setattr(torch.Tensor, name, read)
        steps = train_steps(model, data, stats, loss_fn=F.cross_entropy, optimizer=opt, device=CPU,
                            clip_grad_norm=1.0)
    assert steps == 8
    assert stats.summarize(epoch=1)["loss"] > 0


def test_channels_last_inputs_when_forced():
    model = DtypeProbe(conv=True)
    small_fit(model, CPU, x=torch.randn(32, 1, 4, 4), channels_last=True)
    assert next(model.conv.parameters()).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
def test_compile_option_trains():
    import shutil

    pytest.importorskip("torch._dynamo")
    if shutil.which("cc") is None and shutil.which("gcc") is None:  # inductor compiles C++ on the CPU
        pytest.skip("no C++ compiler for torch.compile's CPU backend")
    torch.manual_seed(0)
    model = MLP(4, hidden=(8,), out_features=3)
    hist, _ = small_fit(model, CPU, compile=True)
    assert len(hist) == 2 and hist["train_loss"][-1] < hist["train_loss"][0]


# --- on a CUDA device ----------------------------------------------------------------------------------------------

@pytest.mark.gpu
def test_cuda_defaults_bf16_channels_last_and_fused():
    device = torch.device("cuda")
    model = DtypeProbe(conv=True).to(device)
    _, opt = small_fit(model, device, x=torch.randn(32, 1, 4, 4))
    if torch.cuda.is_bf16_supported():
        assert torch.bfloat16 in {v for k, v in model.seen if k == "dtype"}
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert opt.param_groups[0]["fused"] is True


@pytest.mark.gpu
def test_no_host_sync_inside_the_training_steps():
    device = torch.device("cuda")
    model = MLP(4, hidden=(16,), out_features=3).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    data = TensorLoader(torch.randn(256, 4), torch.arange(256) % 3, 32, device=device, shuffle=False)
    stats = EpochStats({"accuracy": accuracy})
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronizing call raises
    try:
        steps = train_steps(model, data, stats, loss_fn=F.cross_entropy, optimizer=opt, device=device,
                            clip_grad_norm=1.0, cast=speed.autocast(device, speed.amp_dtype("auto", device)))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert steps == 8
    assert stats.summarize(epoch=1)["loss"] > 0  # the one sync of the epoch, after the steps


@pytest.mark.gpu
def test_resume_on_cuda(tmp_path):
    from esc_course.checkpoint import LAST, load

    device = torch.device("cuda")

    def run(folder, resume, stop_at=None):
        torch.manual_seed(0)
        model = MLP(4, hidden=(16,), out_features=3, dropout=0.2).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        data = TensorLoader(torch.randn(128, 4), torch.arange(128) % 3, 16, device=device,
                            generator=torch.Generator().manual_seed(0))
        hist = fit(model, data, loss_fn=F.cross_entropy, optimizer=opt, epochs=4 if stop_at is None else stop_at,
                   progress=False, checkpoint_dir=folder, resume=resume)
        return model, hist

    run(tmp_path, False, stop_at=2)
    resumed, _ = run(tmp_path, True)
    assert load(tmp_path / LAST).counters["epoch"] == 4
    assert all(p.is_cuda for p in resumed.parameters())
    whole, _ = run(None, False)  # the same four epochs without a break
    for a, b in zip(resumed.parameters(), whole.parameters()):
        torch.testing.assert_close(a, b)  # same batches, dropout masks and steps (CUDA kernels may differ in bits)
