"""esc_course.models.transfer: torchvision backbones built with weights=None (no download), weights files the tests
write themselves, the torch hub cache in a temporary TORCH_HOME, freezing, discriminative rates, feature extraction."""

import os

import pytest
import torch
from torch import nn

from esc_course.checkpoint import CheckpointError, save_weights
from esc_course.models import transfer as T

NAMES = ["resnet18", "mobilenet_v3_small", "efficientnet_b0"]


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return T.backbone("resnet18", weights=None, num_classes=4)


def fresh_resnet(num_classes=4, seed=0):
    torch.manual_seed(seed)
    return T.backbone("resnet18", weights=None, num_classes=num_classes)


# --- building ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_backbone_shape_and_no_nan(name):
    torch.manual_seed(0)
    model = T.backbone(name, weights=None, num_classes=5).eval()
    out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 5)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name, head", [("resnet18", "fc"), ("mobilenet_v3_small", "classifier.3"),
                                        ("efficientnet_b0", "classifier.1")])
def test_head_is_the_last_linear_layer(name, head):
    model = T.backbone(name, weights=None)
    assert T.head_name(model) == head
    assert T.get_head(model).out_features == 1000


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid backbones: .*resnet18.*mobilenet_v3_small.*efficientnet_b0"):
        T.backbone("resnet19", weights=None)
    with pytest.raises(ValueError, match="valid: DEFAULT, IMAGENET1K_V1"):
        T.backbone("resnet18", weights="IMAGENET22K")
    with pytest.raises(ValueError, match="weights must be"):
        T.backbone("resnet18", weights=3)


def test_own_backbone_has_no_published_weights():
    with pytest.raises(ValueError, match="no published pretrained weights"):
        T.backbone("small_resnet", weights="DEFAULT")


def test_stages_in_forward_order():
    assert T.stages(T.backbone("resnet18", weights=None)) == ["conv1", "bn1", "layer1", "layer2", "layer3",
                                                             "layer4", "fc"]
    mobile = T.stages(T.backbone("mobilenet_v3_small", weights=None))
    assert mobile == [f"features.{i}" for i in range(13)] + ["classifier.0", "classifier.3"]


def test_replace_head_keeps_the_body(resnet):
    model = fresh_resnet(num_classes=1000)
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    T.replace_head(model, 7)
    assert T.get_head(model).out_features == 7 and T.get_head(model).in_features == 512
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="num_classes"):
            T.replace_head(model, bad)


# --- weights -------------------------------------------------------------------------------------------------------

def _same_body(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in sa.items() if not k.startswith("fc."))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_weights_file_round_trip_with_a_new_head(tmp_path, suffix):
    source = fresh_resnet(num_classes=5, seed=1)
    path = tmp_path / f"source{suffix}"
    if suffix == ".safetensors":
        save_weights(source, path)
    else:
        torch.save(source.state_dict(), path)
    # the file has a 5-class head; the target task has 3 classes: the body loads exactly, the head is new
    model = T.backbone("resnet18", weights=path, num_classes=3)
    assert _same_body(model, source) and T.get_head(model).out_features == 3
    # without num_classes the file's head is kept as it was saved
    same = T.backbone("resnet18", weights=str(path))
    assert torch.equal(same.fc.weight, source.fc.weight)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(same.eval()(x), source.eval()(x))


def test_checkpoint_dict_with_state_dict_inside_loads(tmp_path):
    source = fresh_resnet(seed=2)
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, tmp_path / "ckpt.pth")
    assert _same_body(T.backbone("resnet18", weights=tmp_path / "ckpt.pth"), source)


class _Payload:
    """Unpickling this would create a file: weights_only=True must refuse it before anything runs."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_file_that_would_run_code_is_refused(tmp_path):
    target = tmp_path / "side_effect.txt"
    torch.save({"fc.weight": torch.zeros(1), "evil": _Payload(str(target))}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused: unpickling it would load"):
        T.backbone("resnet18", weights=tmp_path / "evil.pt")
    assert not target.exists()


def test_weights_of_another_model_are_rejected_with_the_keys(tmp_path):
    other = T.backbone("mobilenet_v3_small", weights=None)
    save_weights(other, tmp_path / "mobile.safetensors")
    with pytest.raises(ValueError, match="does not fit this model"):
        T.backbone("resnet18", weights=tmp_path / "mobile.safetensors")
    with pytest.raises(CheckpointError, match="missing.safetensors: no such file"):
        T.backbone("resnet18", weights=tmp_path / "missing.safetensors")


def test_missing_weights_offline_name_the_cache_path(torch_home):
    expected = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert T.cache_path("resnet18") == expected
    for download in (False, True):  # True: the download is attempted and fails (the network is patched away)
        with pytest.raises(T.WeightsUnavailableError) as err:
            T.backbone("resnet18", weights="DEFAULT", download=download)
        assert str(expected) in str(err.value)
        assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in str(err.value)
        assert "weights=None" in str(err.value)
    assert not expected.exists()


def test_cached_weights_are_used_without_a_download(torch_home):
    cached = fresh_resnet(num_classes=1000, seed=3)
    path = T.cache_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(cached.state_dict(), path)
    model = T.backbone("resnet18", weights="DEFAULT", num_classes=10)  # download would raise: it is patched
    assert _same_body(model, cached) and T.get_head(model).out_features == 10


def test_a_corrupted_cache_file_says_which_file(torch_home):
    path = T.cache_path("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="delete the file and download it again") as err:
        T.backbone("resnet18", weights="DEFAULT")
    assert str(path) in str(err.value)


def test_input_stats_follow_the_weights():
    mean, std = T.input_stats("resnet18", "DEFAULT")
    assert mean == pytest.approx([0.485, 0.456, 0.406]) and std == pytest.approx([0.229, 0.224, 0.225])
    assert T.input_stats("resnet18", None) is None
    assert T.input_stats("resnet18", "some/file.safetensors") is None


# --- freezing ------------------------------------------------------------------------------------------------------

def _sgd_step(model, x, y):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_freeze_until_keeps_earlier_layers_and_their_statistics_fixed():
    model = T.freeze(fresh_resnet(), until="layer4")
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"layer4", "fc"}
    assert isinstance(model.bn1, T.FrozenBatchNorm2d) and isinstance(model.layer3[1].bn2, T.FrozenBatchNorm2d)
    assert isinstance(model.layer4[0].bn1, nn.BatchNorm2d)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _sgd_step(model, torch.rand(8, 3, 32, 32), torch.randint(0, 4, (8,)))
    after = model.state_dict()
    early = [k for k in before if not k.startswith(("layer4.", "fc."))]
    late = [k for k in before if k.startswith("layer4.") and k.endswith("weight")]
    assert all(torch.equal(before[k], after[k]) for k in early)  # weights and running statistics
    assert any(not torch.equal(before[k], after[k]) for k in late)


def test_freeze_without_until_trains_only_the_head_and_unfreeze_restores():
    model = fresh_resnet()
    x = torch.rand(4, 3, 32, 32)
    reference = model.eval()(x)
    T.freeze(model)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    assert torch.allclose(model.train()(x), reference, atol=1e-5)  # frozen BN: train mode == eval mode
    T.unfreeze(model)
    assert all(p.requires_grad for p in model.parameters())
    assert not any(isinstance(m, T.FrozenBatchNorm2d) for m in model.modules())
    assert torch.allclose(model.eval()(x), reference, atol=1e-6)


def test_freeze_is_absolute_for_gradual_unfreezing():
    model = T.freeze(fresh_resnet(), until="layer4")
    T.freeze(model, until="layer3")
    assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == {"layer3", "layer4", "fc"}
    assert isinstance(model.layer3[0].bn1, nn.BatchNorm2d) and isinstance(model.layer2[0].bn1, T.FrozenBatchNorm2d)


def test_freeze_with_an_unknown_layer_lists_the_stages(resnet):
    with pytest.raises(ValueError, match="until='layer9'.*valid: conv1, bn1, layer1"):
        T.freeze(resnet, until="layer9")


def test_frozen_batchnorm_matches_pytorch_batchnorm_in_eval_mode():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(6, eps=1e-3, momentum=0.01)
    bn.train()(torch.randn(16, 6, 5, 5) * 3 + 1)  # non-trivial running statistics
    nn.init.normal_(bn.weight)
    nn.init.normal_(bn.bias)
    frozen = T.FrozenBatchNorm2d(bn)
    x = torch.randn(4, 6, 5, 5)
    assert torch.allclose(frozen.train()(x), bn.eval()(x), atol=1e-6)
    back = frozen.to_batchnorm()
    assert back.eps == 1e-3 and back.momentum == 0.01
    assert all(torch.equal(v, bn.state_dict()[k]) for k, v in back.state_dict().items())
    assert set(frozen.state_dict()) == set(bn.state_dict())  # saves like the plain layer


def test_frozen_model_saves_and_loads_as_a_plain_one(tmp_path):
    model = T.freeze(fresh_resnet(seed=4), until="layer3")
    save_weights(model, tmp_path / "frozen.safetensors")
    plain = T.backbone("resnet18", weights=tmp_path / "frozen.safetensors")
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(plain.eval()(x), model.eval()(x), atol=1e-6)


# --- discriminative learning rates ---------------------------------------------------------------------------------

def test_param_groups_give_earlier_stages_smaller_rates():
    model = fresh_resnet()
    groups = T.param_groups(model, lr=1e-2, decay=0.5)
    assert [g["name"] for g in groups] == T.stages(model)
    rates = [g["lr"] for g in groups]
    assert rates[-1] == 1e-2 and rates == sorted(rates)
    assert rates[-2] == pytest.approx(0.5e-2) and rates[0] == pytest.approx(1e-2 * 0.5**6)
    covered = sum(p.numel() for g in groups for p in g["params"])
    assert covered == sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(groups)  # the groups are accepted as they are
    assert [g["name"] for g in opt.param_groups] == T.stages(model)


def test_param_groups_leave_frozen_layers_out():
    model = T.freeze(fresh_resnet(), until="layer4")
    groups = T.param_groups(model, lr=1e-3, weight_decay=0.0)
    assert [g["name"] for g in groups] == ["layer4", "fc"]
    assert all(g["weight_decay"] == 0.0 for g in groups)
    assert groups[0]["lr"] == pytest.approx(1e-3 / 2.6)


@pytest.mark.parametrize("kwargs, match", [(dict(lr=0.0), "lr must be positive"),
                                           (dict(lr=1e-3, decay=0.0), "decay must be in"),
                                           (dict(lr=1e-3, decay=1.5), "decay must be in")])
def test_param_groups_reject_bad_rates(resnet, kwargs, match):
    with pytest.raises(ValueError, match=match):
        T.param_groups(resnet, **kwargs)


def test_param_groups_of_a_fully_frozen_model_say_so():
    model = fresh_resnet()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="every parameter of the model is frozen"):
        T.param_groups(model, lr=1e-3)


# --- feature extraction --------------------------------------------------------------------------------------------

def test_features_are_the_heads_input_and_a_stage_can_be_pooled(resnet):
    x = torch.rand(5, 3, 32, 32)
    feats = T.extract_features(resnet, x, batch_size=2)
    assert feats.shape == (5, 512)
    body = T.headless(resnet).eval()
    with torch.no_grad():
        assert torch.allclose(feats, body(x), atol=1e-5)
        assert torch.allclose(resnet.eval()(x), resnet.fc(feats), atol=1e-5)
        manual = resnet.layer2(resnet.layer1(resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x))))))
    mid = T.extract_features(resnet, x, stage="layer2")
    assert mid.shape == (5, 128)
    assert torch.allclose(mid, manual.mean(dim=(2, 3)), atol=1e-5)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in resnet.modules())  # hooks are removed


def test_fit_head_trains_only_the_head_on_features_computed_once():
    model = fresh_resnet(num_classes=2, seed=5)
    g = torch.Generator().manual_seed(0)
    # two classes that a random convolutional network separates: a bright left half vs a bright right half
    x = torch.rand(64, 3, 16, 16, generator=g) * 0.3
    y = torch.arange(64) % 2
    x[y == 0, :, :, :8] += 0.7
    x[y == 1, :, :, 8:] += 0.7
    body_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    history = T.fit_head(model, x, y, val=(x, y), epochs=60, lr=3e-2)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] >= 0.95
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in body_before.items())
    with torch.no_grad():
        assert (model.eval()(x).argmax(1) == y).float().mean() >= 0.95  # the trained head is the model's own


def test_no_torchvision_import_at_module_level():
    import subprocess
    import sys

    code = "import sys, esc_course.models.transfer; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert out.stdout.strip() == "False", out.stderr


def test_an_esc_course_checkpoint_gives_its_model_weights(tmp_path):
    from esc_course import checkpoint

    source = fresh_resnet(seed=6)
    checkpoint.save(tmp_path / "last.safetensors", model=source)
    assert _same_body(T.backbone("resnet18", weights=tmp_path / "last.safetensors"), source)


def test_one_loader_resizes_the_head_only_when_asked():
    """checkpoint.load_model_state is the one weight loader: head=... resizes a head of another size (transfer
    learning), without it the same weights are refused naming the key and both shapes."""
    from esc_course.checkpoint import load_model_state

    def net(classes, width=8):
        return nn.Sequential(nn.Linear(4, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, classes))

    source = net(5)
    weights = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    with pytest.raises(CheckpointError, match=r"'3.weight' is \(5, 8\) in the checkpoint but \(3, 8\)") as err:
        load_model_state(net(3), weights, "w.safetensors")
    assert "w.safetensors" in str(err.value) and err.value.key == "3.weight"
    model = load_model_state(net(3), weights, "w.safetensors", head="3")
    assert model[3].out_features == 5
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    with pytest.raises(CheckpointError, match=r"w.safetensors \[3.weight\]: .*head takes 16 features"):
        load_model_state(net(3, width=16), {**net(5, width=16).state_dict(), "3.weight": torch.zeros(5, 8)},
                         "w.safetensors", head="3")
    with pytest.raises(ValueError, match=r"head='2': expected the name of an nn.Linear"):
        load_model_state(net(3), weights, "w.safetensors", head="2")
