import pytest
import torch

from esc_course import TensorLoader


def test_every_sample_once_per_epoch():
    x = torch.arange(103).float().unsqueeze(1)
    y = torch.arange(103)
    loader = TensorLoader(x, y, batch_size=10, generator=torch.Generator().manual_seed(0))
    assert len(loader) == 11
    for _ in range(3):
        seen = torch.cat([yb for _, yb in loader])
        assert sorted(seen.tolist()) == list(range(103))
        xs = torch.cat([xb for xb, _ in loader])
        assert xs.shape == (103, 1)


def test_pairs_stay_together_and_order_changes():
    x = torch.arange(50).float()
    loader = TensorLoader(x, x.long() * 2, batch_size=7, generator=torch.Generator().manual_seed(1))
    first = torch.cat([yb for _, yb in loader])
    second = torch.cat([yb for _, yb in loader])
    assert not torch.equal(first, second)
    for xb, yb in loader:
        assert torch.equal(xb.long() * 2, yb)


def test_same_generator_seed_same_order():
    x = torch.arange(64).float()
    a = [yb.tolist() for _, yb in TensorLoader(x, x, 8, generator=torch.Generator().manual_seed(5))]
    b = [yb.tolist() for _, yb in TensorLoader(x, x, 8, generator=torch.Generator().manual_seed(5))]
    assert a == b


def test_no_shuffle_and_drop_last():
    x = torch.arange(10)
    loader = TensorLoader(x, x, batch_size=4, shuffle=False, drop_last=True)
    assert len(loader) == 2
    assert [yb.tolist() for _, yb in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=torch.zeros(5, 2), y=torch.zeros(4)), "same number of samples"),
    (dict(x=torch.zeros(0, 2), y=torch.zeros(0)), "empty"),
    (dict(x=torch.zeros(5, 2), y=torch.zeros(5), batch_size=0), "batch_size must be a positive integer"),
    (dict(x=torch.zeros(5, 2), y=torch.zeros(5), batch_size=8, drop_last=True), "larger than the data set"),
    (dict(x=[1, 2], y=torch.zeros(2)), "must be tensors"),
])
def test_bad_input(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TensorLoader(**kwargs)


def test_a_loader_made_before_any_seed_everything_uses_the_global_generator(monkeypatch):
    from esc_course import seed

    monkeypatch.setattr(seed, "_armed", {})  # a fresh process: seed_everything never called
    x = torch.arange(30).float()
    loader = TensorLoader(x, x, 5)
    assert loader.generator is None
    torch.manual_seed(2)
    a = torch.cat([yb for _, yb in loader])
    torch.manual_seed(2)
    assert torch.equal(torch.cat([yb for _, yb in loader]), a)
