"""esc_course.checkpoint: round trips, atomic writes, and loading that refuses pickles, broken files, other models."""

import json
import os
import pickle
import random
import struct

import numpy as np
import pytest
import torch
from torch import nn

from esc_course import checkpoint
from esc_course.checkpoint import CheckpointError, load, load_weights, save
from esc_course.models import MLP
from esc_course.train import History

from esc_testutil import assert_same


def trained(hidden=(8,), steps=3, seed=0):
    torch.manual_seed(seed)
    model = MLP(2, hidden=hidden, out_features=3, batch_norm=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(16, 2), torch.randint(0, 3, (16,))
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, opt


def test_round_trip_of_model_optimizer_history_and_counters(tmp_path):
    model, opt = trained()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    opt.step()
    sched.step()
    hist = History([{"epoch": 1, "train_loss": 0.5, "val_loss": float("nan")}, {"epoch": 2, "train_loss": 0.25}])
    path = save(tmp_path / "c.safetensors", model=model, optimizer=opt, scheduler=sched, history=hist,
                counters={"epoch": 2, "step": 0})
    model2, opt2 = trained(seed=1, steps=1)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=5, gamma=0.1)
    ckpt = load(path, model=model2, optimizer=opt2, scheduler=sched2)
    assert_same(model.state_dict(), model2.state_dict())
    assert_same(opt.state_dict(), opt2.state_dict())
    assert_same(sched.state_dict(), sched2.state_dict())
    assert ckpt.counters == {"epoch": 2, "step": 0}
    assert ckpt.history[0]["train_loss"] == 0.5 and np.isnan(ckpt.history[0]["val_loss"])
    assert ckpt.history[1] == {"epoch": 2, "train_loss": 0.25}


def schedulers(opt):
    lr = torch.optim.lr_scheduler
    return {
        "onecycle": lr.OneCycleLR(opt, max_lr=0.1, total_steps=20),
        "plateau": lr.ReduceLROnPlateau(opt, patience=1),  # best = inf: a non-finite float in JSON
        "lambda": lr.LambdaLR(opt, lambda e: 0.9 ** e),
        "cosine_restarts": lr.CosineAnnealingWarmRestarts(opt, T_0=3),
        "sequential": lr.SequentialLR(opt, [lr.LinearLR(opt, 0.1, total_iters=2), lr.ExponentialLR(opt, 0.9)],
                                      milestones=[2]),
    }


@pytest.mark.parametrize("name", ["onecycle", "plateau", "lambda", "cosine_restarts", "sequential"])
def test_every_kind_of_scheduler_state_survives(tmp_path, name):
    model, opt = trained()
    sched = schedulers(opt)[name]
    for _ in range(3):
        opt.step()
        sched.step(1.0) if name == "plateau" else sched.step()
    save(tmp_path / "c.safetensors", model=model, optimizer=opt, scheduler=sched)
    model2, opt2 = trained(seed=2)
    sched2 = schedulers(opt2)[name]
    load(tmp_path / "c.safetensors", model=model2, optimizer=opt2, scheduler=sched2)
    assert_same(sched.state_dict(), sched2.state_dict())
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_random_states_come_back(tmp_path):
    gen = torch.Generator().manual_seed(3)
    torch.randn(5, generator=gen)
    state = checkpoint.rng_state([gen])
    json.dumps(state)  # JSON-ready
    draw = lambda: (random.random(), float(np.random.rand()), torch.rand(2).tolist(),  # noqa: E731
                    torch.randperm(10, generator=gen).tolist())
    first = draw()
    checkpoint.set_rng_state(state, [gen])
    assert draw() == first


def test_a_failed_write_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    model, opt = trained()
    path = save(tmp_path / "c.safetensors", model=model, counters={"epoch": 1})
    before = path.read_bytes()
    import safetensors.torch

    def half_then_crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x00" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        save(path, model=model, counters={"epoch": 2})
    assert path.read_bytes() == before
    assert load(path, model=model).counters["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temporary file left


class Payload:
    """Unpickling this runs code: it writes a marker file (a stand-in for anything an attacker wants)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def malicious_files(folder):
    marker = folder / "side_effect.txt"
    weights = {"0.weight": torch.zeros(8, 2), "evil": Payload(marker)}
    zip_file, legacy, raw = folder / "zip.pt", folder / "legacy.pt", folder / "raw.pkl"
    torch.save(weights, zip_file)
    torch.save(weights, legacy, _use_new_zipfile_serialization=False)
    raw.write_bytes(pickle.dumps(weights))
    return marker, [zip_file, legacy, raw]


def test_the_crafted_pickle_really_runs_code_when_unpickled_unsafely(tmp_path):
    marker, (zip_file, _, _) = malicious_files(tmp_path)
    torch.load(zip_file, weights_only=False)  # what must never happen inside esc_course
    assert marker.read_text() == "pwned"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("loader", ["load", "load_weights", "fit_resume"])
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, loader):
    marker, files = malicious_files(tmp_path)
    for path in files:
        model = MLP(2, hidden=(8,), out_features=3)
        with pytest.raises(CheckpointError) as err:
            if loader == "load":
                load(path, model=model)
            elif loader == "load_weights":
                load_weights(path, model)
            else:
                from esc_course import TensorLoader, fit

                folder = tmp_path / f"run_{path.stem}"
                folder.mkdir()
                (folder / checkpoint.LAST).write_bytes(path.read_bytes())
                fit(model, TensorLoader(torch.randn(8, 2), torch.zeros(8, dtype=torch.long)), loss_fn=nn.MSELoss(),
                    optimizer=torch.optim.SGD(model.parameters(), 0.1), epochs=1, checkpoint_dir=folder,
                    resume=True, progress=False)
        assert str(err.value.path.name) in str(err.value)
        assert not marker.exists(), f"{loader} ran the pickle's code for {path.name}"
    if loader == "load_weights":  # the refusal names what the pickle wanted to call
        assert "exec" in str(err.value)


@pytest.fixture
def saved(tmp_path):
    model, opt = trained()
    return save(tmp_path / "c.safetensors", model=model, optimizer=opt, counters={"epoch": 1})


@pytest.mark.parametrize("keep", [0, 4, 8, 40, -100, -1])
def test_a_truncated_file_is_refused_naming_the_file(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    model, opt = trained()
    with pytest.raises(CheckpointError) as err:
        load(saved, model=model, optimizer=opt)
    assert str(saved) in str(err.value)


def header_end(path):
    return 8 + struct.unpack("<Q", path.read_bytes()[:8])[0]


def test_a_flipped_byte_in_a_tensor_is_found_and_the_tensor_named(saved):
    data = bytearray(saved.read_bytes())
    data[header_end(saved) + 5] ^= 0xFF  # inside the first tensor's bytes
    saved.write_bytes(bytes(data))
    model = MLP(2, hidden=(8,), out_features=3, batch_norm=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="SHA-256") as err:
        load(saved, model=model)
    assert err.value.key is not None and err.value.key in str(err.value) and str(saved) in str(err.value)
    assert_same(before, model.state_dict())  # nothing was changed


def test_a_changed_counter_in_the_json_header_is_found(saved):
    data = saved.read_bytes()
    edited = data.replace(b'\\"epoch\\":1', b'\\"epoch\\":7')  # same length: the header still parses
    assert edited != data
    saved.write_bytes(edited)
    with pytest.raises(CheckpointError, match="JSON state") as err:
        load(saved, model=trained()[0])
    assert err.value.key == "header"


def test_garbage_and_missing_files(tmp_path):
    (tmp_path / "junk").write_bytes(os.urandom(300))
    with pytest.raises(CheckpointError, match="not a safetensors"):
        load(tmp_path / "junk")
    with pytest.raises(CheckpointError, match="no such"):
        load(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="no such"):
        load_weights(tmp_path / "nope.pt", MLP(2, hidden=(), out_features=1))


def test_another_models_checkpoint_names_the_keys(saved):
    wider = MLP(2, hidden=(16,), out_features=3, batch_norm=True)
    with pytest.raises(CheckpointError) as err:
        load(saved, model=wider)
    msg = str(err.value)
    assert "shape mismatch" in msg and "'0.weight' is (8, 2) in the checkpoint but (16, 2)" in msg
    assert err.value.key == "0.weight" and str(saved) in msg
    deeper = MLP(2, hidden=(8, 8), out_features=3, batch_norm=True)
    with pytest.raises(CheckpointError, match="missing keys .*'4.weight'") as err:
        load(saved, model=deeper)
    no_bn = MLP(2, hidden=(8,), out_features=3)
    with pytest.raises(CheckpointError, match="unexpected keys .*'1.running_mean'"):
        load(saved, model=no_bn)


def test_optimizer_of_another_shape_is_refused(saved):
    model = MLP(2, hidden=(8,), out_features=3, batch_norm=True)
    fewer = torch.optim.Adam(list(model.parameters())[:2], lr=0.1)
    with pytest.raises(CheckpointError, match="optimizer state does not fit") as err:
        load(saved, model=model, optimizer=fewer)
    assert err.value.key == "optimizer"


def test_load_weights_reads_plain_files_safely(tmp_path):
    from safetensors.torch import save_file

    model, _ = trained()
    save_file(model.state_dict(), tmp_path / "plain.safetensors")
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "wrapped.pt")
    save(tmp_path / "ours.safetensors", model=model)
    for name in ("plain.safetensors", "plain.pt", "wrapped.pt", "ours.safetensors"):
        fresh = MLP(2, hidden=(8,), out_features=3, batch_norm=True)
        load_weights(tmp_path / name, fresh)
        assert_same(model.state_dict(), fresh.state_dict())
    with pytest.raises(CheckpointError, match="not an esc_course checkpoint"):
        load(tmp_path / "plain.safetensors", model=model)
    with pytest.raises(CheckpointError, match="never unpickled"):
        load(tmp_path / "plain.pt", model=model)


def test_tied_and_channels_last_tensors_are_saved(tmp_path):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 4)
            self.out = nn.Linear(4, 5, bias=False)
            self.out.weight = self.emb.weight  # weight tying: two names, one tensor
            self.conv = nn.Conv2d(3, 4, 3)

    model = Tied().to(memory_format=torch.channels_last)
    save(tmp_path / "t.safetensors", model=model)
    fresh = Tied()
    load(tmp_path / "t.safetensors", model=fresh)
    assert fresh.out.weight is fresh.emb.weight and torch.equal(fresh.emb.weight, model.emb.weight)
    assert torch.equal(fresh.conv.weight, model.conv.weight)


def test_generator_count_must_match(tmp_path):
    model, _ = trained()
    save(tmp_path / "c.safetensors", model=model, generators=[torch.Generator()])
    with pytest.raises(CheckpointError, match="generator") as err:
        load(tmp_path / "c.safetensors", model=model, generators=[])
    assert err.value.key == "rng"


def test_safetensors_files_are_told_from_pickles_whatever_their_header_length(tmp_path):
    from safetensors.torch import save_file

    from esc_course.checkpoint import _kind

    for pad in range(256):  # the header length's first byte takes every value, 0x80 (pickle's PROTO) included
        path = tmp_path / "w.safetensors"
        save_file({"w": torch.zeros(2)}, path, metadata={"pad": "a" * pad})
        assert _kind(path) == "safetensors"


def test_every_course_optimizer_state_round_trips(tmp_path):
    from esc_course.optim.optimizers import OPTIMIZERS, get_optimizer

    for name in OPTIMIZERS:
        torch.manual_seed(0)
        model = MLP(2, hidden=(4,), out_features=2)
        opt = get_optimizer(name, model.parameters(), lr=0.01)
        for _ in range(2):
            opt.zero_grad()
            nn.functional.cross_entropy(model(torch.randn(8, 2)), torch.zeros(8, dtype=torch.long)).backward()
            opt.step()
        save(tmp_path / f"{name}.safetensors", model=model, optimizer=opt)
        fresh = MLP(2, hidden=(4,), out_features=2)
        fresh_opt = get_optimizer(name, fresh.parameters(), lr=0.5)
        load(tmp_path / f"{name}.safetensors", model=fresh, optimizer=fresh_opt)
        assert_same(opt.state_dict(), fresh_opt.state_dict())
