"""Parameter and multiply-add counts: closed forms on small layers, torchvision's models against the slides."""

import pytest
import torch
from torch import nn

from esc_course.models.cnn import DepthwiseSeparableConv
from esc_course.models.complexity import (
    complexity_table,
    kind_table,
    layer_costs,
    model_summary,
    reference_model,
)


def test_counts_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 5))
    rows = layer_costs(model, (3, 8, 8))
    assert [r["kind"] for r in rows] == ["conv", "fc"]
    conv, fc = rows
    assert conv["params"] == 4 * 3 * 9 + 4 and conv["macs"] == (4 * 8 * 8) * (3 * 9) and conv["output"] == "4x8x8"
    assert fc["params"] == 64 * 5 + 5 and fc["macs"] == 64 * 5
    summary = model_summary("tiny", model, (3, 8, 8))
    assert summary["params_M"] * 1e6 == pytest.approx(112 + 325)
    assert summary["conv_params_pct"] + summary["fc_params_pct"] == pytest.approx(100)


def test_depthwise_separable_costs_one_over_c_out_plus_one_ninth():
    c_in, c_out = 32, 64
    standard = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    separable = DepthwiseSeparableConv(c_in, c_out)
    macs = lambda m: sum(r["macs"] for r in layer_costs(m, (c_in, 8, 8)))  # noqa: E731
    assert macs(separable) / macs(standard) == pytest.approx(1 / c_out + 1 / 9)
    kinds = {r["kind"]: r for r in kind_table(layer_costs(separable, (c_in, 8, 8)))}
    assert set(kinds) == {"depthwise", "conv1x1", "norm"}
    assert sum(r["params_pct"] for r in kinds.values()) == pytest.approx(100)


def test_the_model_is_left_as_it_was():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).train()
    before = model[1].running_mean.clone()
    layer_costs(model, (1, 5, 5))
    assert model.training and torch.equal(model[1].running_mean, before)
    assert not model[0]._forward_hooks


# The slides' table: AlexNet 61 M params (3.8 % conv / 96.2 % FC), 725 M ops (91.9 / 8.1);
# VGG-16 138 M (10.6 / 89.4), 15,484 M ops (99.2 / 0.8). torchvision's AlexNet is the one-GPU variant
# (64-192-384-256-256 filters), so its numbers differ a little from the paper's.
@pytest.mark.parametrize("name, params, conv_pct, macs_m, conv_macs_pct", [
    ("AlexNet", 61_100_840, 3.8, 725, 91.9),
    ("VGG-16", 138_357_544, 10.6, 15_484, 99.2),
    ("ResNet-18", 11_689_512, None, None, None),
])
def test_reference_models_match_the_slides(name, params, conv_pct, macs_m, conv_macs_pct):
    model = reference_model(name)
    assert next(model.parameters()).device.type == "meta"  # nothing allocated
    row = model_summary(name, model, (3, 224, 224))
    assert round(row["params_M"] * 1e6) == params
    if conv_pct is not None:
        assert row["conv_params_pct"] == pytest.approx(conv_pct, abs=0.5)
        assert row["macs_M"] == pytest.approx(macs_m, rel=0.02)
        assert row["conv_macs_pct"] == pytest.approx(conv_macs_pct, abs=0.5)
    else:  # ResNet-18: global average pooling leaves one small FC layer; ~1.8 G multiply-adds
        assert row["fc_params_pct"] < 5 and row["macs_M"] == pytest.approx(1814, rel=0.01)


def test_complexity_table_lists_own_and_reference_models():
    rows = complexity_table({"tiny": (nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), (1, 2, 2))}, references=("AlexNet",))
    assert [r["model"] for r in rows] == ["tiny", "AlexNet"]
    assert rows[0]["fc_params_pct"] == 100
    with pytest.raises(ValueError, match="valid: AlexNet"):
        reference_model("NoSuchNet")
