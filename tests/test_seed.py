import random

import numpy as np
import pytest
import torch

from esc_course import seed_everything


def draw():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_same_seed_same_numbers():
    seed_everything(7)
    a = draw()
    seed_everything(7)
    assert draw() == a
    seed_everything(8)
    assert draw() != a


def test_deterministic_mode_sets_torch_flags():
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        seed_everything(1)  # the default leaves the mode as the user set it (a lab seeding itself must not undo it)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    finally:
        seed_everything(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "3", True])
def test_bad_seed_is_refused(bad):
    with pytest.raises(ValueError, match="seed must be an integer"):
        seed_everything(bad)


def _order(loader):
    return torch.cat([yb for _, yb in loader]).tolist()


def test_seed_everything_fixes_a_later_loaders_order_whatever_else_was_drawn():
    from esc_course import TensorLoader

    x = torch.arange(200).float()
    seed_everything(3)
    a = TensorLoader(x, x, batch_size=16)
    torch.nn.Linear(10, 10)  # run A builds a small model before its loader is iterated
    first_a, second_a = _order(a), _order(a)
    seed_everything(3)
    torch.randn(10_000)  # run B draws far more numbers (a bigger model) ...
    b = TensorLoader(x, x, batch_size=16)
    torch.nn.Linear(500, 500)  # ... before and after creating its loader
    assert _order(b) == first_a and _order(b) == second_a  # same batches, epoch by epoch
    assert first_a != second_a  # a new order every epoch
    seed_everything(4)
    assert _order(TensorLoader(x, x, batch_size=16)) != first_a


def test_loaders_after_one_seed_get_distinct_streams_and_leave_the_global_rng_alone():
    from esc_course import TensorLoader

    x = torch.arange(100).float()
    seed_everything(0)
    expected = torch.rand(5)
    seed_everything(0)
    train, val = TensorLoader(x, x, 10), TensorLoader(x, x, 10)
    assert _order(train) != _order(val)  # stream 0 and stream 1, not one order twice
    assert torch.equal(torch.rand(5), expected)  # creating and iterating loaders drew nothing from torch's generator


def test_explicit_generator_and_no_shuffle_are_kept():
    from esc_course import TensorLoader

    x = torch.arange(10).float()
    seed_everything(0)
    g = torch.Generator().manual_seed(1)
    assert TensorLoader(x, x, 4, generator=g).generator is g
    assert TensorLoader(x, x, 4, shuffle=False).generator is None
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        TensorLoader(x, x, 4, generator=5)


def test_derived_generator_is_a_pure_function_of_seed_and_count():
    from esc_course.seed import derived_generator

    seed_everything(11)
    first = [derived_generator().initial_seed() for _ in range(3)]
    torch.rand(100)
    seed_everything(11)
    assert [derived_generator().initial_seed() for _ in range(3)] == first
    assert len(set(first)) == 3


def test_checkpoint_resumes_a_seeded_loaders_order():
    """The derived generator is ``loader.generator``: checkpoints save it and restoring it replays the same order."""
    from esc_course import TensorLoader
    from esc_course.checkpoint import generators_of, rng_state, set_rng_state

    x = torch.arange(60).float()
    seed_everything(5)
    loader = TensorLoader(x, x, 8)
    assert generators_of(loader) == [loader.generator]
    _order(loader)  # epoch 1 done: the checkpoint is taken here
    state = rng_state(generators_of(loader))
    straight = [_order(loader), _order(loader)]  # epochs 2, 3 of an uninterrupted run
    seed_everything(5)  # the resumed process seeds first, as every lab does, then restores
    resumed = TensorLoader(x, x, 8)
    set_rng_state(state, generators_of(resumed))
    assert [_order(resumed), _order(resumed)] == straight
