import pytest
import torch

from esc_course.data.embedded import digits
from esc_course.data.split import channel_stats, normalize, split, split_indices


@pytest.mark.parametrize("ratios", [(0.6, 0.2, 0.2), (0.5, 0.3, 0.2), (6, 2, 2), (0.8, 0.2)])
def test_parts_are_disjoint_complete_and_stratified(ratios):
    y = torch.arange(1000) % 4
    parts = split_indices(y, ratios, seed=1)
    joined = torch.cat(parts)
    assert sorted(joined.tolist()) == list(range(1000))
    total = sum(ratios)
    for part, r in zip(parts, ratios):
        assert abs(len(part) - 1000 * r / total) <= 4
        counts = torch.bincount(y[part], minlength=4)
        assert counts.max() - counts.min() <= 1  # each class split by the same ratio


def test_split_is_reproducible_and_seed_dependent():
    y = torch.arange(200) % 3
    a = split_indices(y, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a, split_indices(y, seed=5)))
    assert not torch.equal(a[0], split_indices(y, seed=6)[0])


def test_bad_ratios_and_shapes():
    with pytest.raises(ValueError, match="ratios"):
        split_indices(torch.arange(10), (1.0,))
    with pytest.raises(ValueError, match="ratios"):
        split_indices(torch.arange(10), (0.5, -0.5))
    with pytest.raises(ValueError, match="same number of samples"):
        split(torch.zeros(5, 2), torch.zeros(4))


def test_embedded_digits_and_normalization():
    x, y = digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert torch.bincount(y).tolist()[:3] == [178, 182, 177]
    (xt, yt), _, _ = split(x, y, seed=0)
    mean, std = channel_stats(xt)
    z = normalize(xt, mean, std)
    assert z.mean().abs() < 1e-5 and (z.std() - 1).abs() < 1e-2
