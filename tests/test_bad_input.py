"""Bad input everywhere the package takes it from a user: one table, one clear error per case.

Each case names the call, the error type and the fragments its message must hold: the argument (or layer), the
value given and what would be valid. ``intact`` cases also check that nothing was changed: the model's weights are
the same after the failed fit. Cases marked ``gap`` are known holes, strict xfails, listed in the issue note.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from esc_course import TensorLoader, fit, lab
from esc_course.config import ConfigError, parse_overrides
from esc_course.device import DeviceError, get_device
from esc_course.diagnose import BatchError, LabelError, LayerInputError, NonFiniteInputError
from esc_course.models import MLP
from esc_course.train import NonFiniteLossError

NO_CUDA = not torch.cuda.is_available()


def train(model, x, y, *, intact=False, batch_size=8, loss_fn=F.cross_entropy, lr=0.1, val=None, **kwargs):
    """fit on (x, y); with ``intact``, check the weights are unchanged when it raises."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    try:
        fit(model, TensorLoader(x, y, batch_size, shuffle=False), val, loss_fn=loss_fn, optimizer=opt,
            progress=False, **{"epochs": 2, **kwargs})
    except Exception:
        if intact:
            after = model.state_dict()
            assert all(torch.equal(before[k], after[k]) for k in before), "the failed fit changed the weights"
        raise


def blobs(n=32, features=4, classes=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, features, generator=g), torch.arange(n) % classes


def mlp(features=4, classes=3, **kw):
    torch.manual_seed(0)
    return MLP(features, hidden=(8,), out_features=classes, **kw)


def with_nan(index):
    x, y = blobs()
    x[index, 1] = float("nan")
    return x, y


def lab_run(name, *argv):
    """A lab's run with overrides, as `esc-course lab run NAME --quick ...` runs it (without writing files)."""
    module = lab.load(name)
    return module.run(lab.make_config(name, list(argv), quick=True))


def vgg():
    from esc_course.models.cnn import SmallVGG

    torch.manual_seed(0)
    return SmallVGG(in_channels=1, num_classes=10, widths=(4, 8))


def regressor():
    from esc_course.models.rnn import SequenceRegressor

    torch.manual_seed(0)
    return SequenceRegressor(input_size=2, hidden_size=8)


def char_lm():
    from esc_course.data.text import CharVocab
    from esc_course.models.rnn import CharLM

    return CharLM(CharVocab("abc"), embed_dim=4, hidden_size=8)


def empty_folder(tmp: Path) -> Path:
    (tmp / "img.png").write_bytes(b"not a class folder")  # images must sit in one sub-folder per class
    return tmp


@dataclass
class Case:
    id: str
    call: object  # call(tmp_path)
    error: type[BaseException] | tuple
    fragments: tuple[str, ...]
    gap: str = ""  # why this is still a hole (the case is a strict xfail)
    cuda_free: bool = False  # only meaningful on a machine without CUDA


CASES = [
    # --- names: labs, data sets, models, optimizers, activations, schedules, metrics ------------------------------
    Case("unknown lab", lambda t: lab.get_info("nope"), ValueError, ("'nope'", "valid labs", "xor")),
    Case("unknown lab (python -m labs)", lambda t: lab.main("nope", []), ValueError, ("'nope'", "valid labs")),
    Case("unknown data set", lambda t: __import__("esc_course.data.vision", fromlist=["v"]).vision("imagenet"),
         ValueError, ("'imagenet'", "valid names", "mnist", "cifar10")),
    Case("unknown data set in a lab", lambda t: lab_run("cnn", "--dataset=imagenet"), ValueError,
         ("'imagenet'", "valid names", "digits")),
    Case("unknown torchvision set", lambda t: __import__("esc_course.data.real", fromlist=["r"])
         .torchvision_dataset("svhn"), ValueError, ("'svhn'", "valid names", "mnist")),
    Case("unknown CNN", lambda t: __import__("esc_course.models.cnn", fromlist=["c"])
         .build_cnn("alexnet", in_channels=1, num_classes=10, image_size=8), ValueError,
         ("'alexnet'", "valid models", "resnet")),
    Case("unknown CNN in a lab", lambda t: lab_run("cnn", "--model=alexnet"), ValueError, ("'alexnet'", "valid models")),
    Case("unknown RNN cell", lambda t: __import__("esc_course.models.rnn", fromlist=["r"]).get_cell("transformer"),
         ValueError, ("'transformer'", "valid cells", "lstm")),
    Case("unknown backbone", lambda t: __import__("esc_course.models.transfer", fromlist=["t"])
         .backbone("vit", weights=None), ValueError, ("'vit'", "valid backbones", "resnet18")),
    Case("unknown init scheme", lambda t: __import__("esc_course.models.init", fromlist=["i"])
         .init_weights(mlp(), "orthogonal"), ValueError, ("'orthogonal'", "valid schemes", "xavier")),
    Case("unknown optimizer", lambda t: __import__("esc_course.optim.optimizers", fromlist=["o"])
         .get_optimizer("adamax", mlp().parameters(), lr=0.1), ValueError, ("'adamax'", "valid optimizers", "adam")),
    Case("unknown optimizer in a lab", lambda t: lab_run("optimizers", "--optimizers=sgd,adamx"), ValueError,
         ("'adamx'", "valid optimizers")),
    Case("unknown activation", lambda t: MLP(2, activation="swishy"), ValueError,
         ("'swishy'", "valid activations", "relu")),
    Case("unknown activation in a lab", lambda t: lab_run("xor", "--activation=swishy"), ValueError,
         ("'swishy'", "valid activations")),
    Case("unknown schedule", lambda t: __import__("esc_course.optim.schedules", fromlist=["s"]).get_schedule("linear"),
         ValueError, ("'linear'", "valid schedules", "cosine")),
    Case("unknown metric", lambda t: train(mlp(), *blobs(), metrics=("f1",)), ValueError,
         ("'f1'", "valid metrics", "accuracy")),
    Case("unknown corpus", lambda t: __import__("esc_course.data.text", fromlist=["t"]).corpus("french"), ValueError,
         ("'french'", "valid corpora", "english")),
    Case("unknown setting", lambda t: parse_overrides(lab.load("xor").Config, ["--epochz=3"]), ConfigError,
         ("--epochz", "valid settings", "--epochs=")),
    Case("setting of the wrong type", lambda t: parse_overrides(lab.load("xor").Config, ["--epochs=many"]),
         ConfigError, ("--epochs='many'", "integer")),
    Case("unknown amp mode", lambda t: train(mlp(), *blobs(), amp="fp8"), ValueError, ("amp", "'fp8'", "'bf16'")),
    Case("bad channels_last", lambda t: train(mlp(), *blobs(), channels_last="yes"), ValueError,
         ("channels_last", "'yes'", "'auto'")),
    Case("unknown device name", lambda t: get_device("gpu"), DeviceError, ("'gpu'", "'cpu'", "'cuda'")),
    Case("unknown device name in fit", lambda t: train(mlp(), *blobs(), device="gpu"), DeviceError,
         ("device='gpu'", "'cpu'")),
    # --- wrong shapes and dtypes into models and fit: the layer, what it got, what it expects --------------------
    Case("features != in_features (Linear)", lambda t: train(
        nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), torch.randn(16, 5), torch.zeros(16).long(),
        intact=True), LayerInputError, ("layer '0'", "Linear", "(8, 5) float32", "(..., 4) float32")),
    Case("features != in_features (MLP)", lambda t: train(mlp(), torch.randn(16, 3), torch.zeros(16).long(),
                                                          intact=True),
         LayerInputError, ("MLP", "(8, 3)", "(N, 4)")),
    Case("hidden layer mismatch", lambda t: train(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(6, 3)),
                                                  *blobs(), intact=True),
         LayerInputError, ("layer '2'", "(8, 8) float32", "(..., 6)")),
    Case("channels != in_channels (Conv2d)", lambda t: train(vgg(), torch.rand(16, 3, 8, 8),
                                                             torch.zeros(16).long(), intact=True),
         LayerInputError, ("Conv2d", "(8, 3, 8, 8)", "(N, 1, H, W)")),
    Case("images without a channel axis", lambda t: train(vgg(), torch.rand(16, 8, 8), torch.zeros(16).long(),
                                                          intact=True),
         LayerInputError, ("Conv2d", "(8, 8, 8)", "(N, 1, H, W)")),
    Case("sequence features != input_size (RNN)", lambda t: train(regressor(), torch.randn(16, 10, 3),
                                                                  torch.randn(16, 1), loss_fn=F.mse_loss,
                                                                  metrics=(), intact=True),
         LayerInputError, ("(B, T, 2)", "(8, 10, 3)")),
    Case("float ids into an embedding", lambda t: train(char_lm(), torch.rand(16, 5), torch.zeros(16, 5).long(),
                                                        intact=True),
         LayerInputError, ("int64", "float32")),
    Case("float64 inputs into a float32 model", lambda t: train(mlp(), blobs()[0].double(), blobs()[1], intact=True),
         LayerInputError, ("float64", "float32")),
    Case("float class labels", lambda t: train(mlp(), blobs()[0], blobs()[1].float(), intact=True), BatchError,
         ("y = (8,) float32", "y.long()")),
    Case("batches with fewer targets than inputs", lambda t: fit(
        mlp(), [(blobs()[0][:8], blobs()[1][:7])], loss_fn=F.cross_entropy,
        optimizer=torch.optim.SGD(mlp().parameters(), 0.1), epochs=1, progress=False),
         BatchError, ("out = (8, 3)", "y = (7,) int64", "batch sizes differ")),
    Case("x and y of different lengths", lambda t: TensorLoader(torch.zeros(5, 2), torch.zeros(4)), ValueError,
         ("same number of samples", "(5, 2)", "(4,)")),
    Case("batch of one into BatchNorm", lambda t: train(mlp(batch_norm=True), *blobs(n=17), batch_size=8),
         LayerInputError, ("BatchNorm1d", "(1, 8)", "drop_last=True")),
    # --- labels out of range ----------------------------------------------------------------------------------
    Case("label >= number of classes", lambda t: train(mlp(classes=3), blobs()[0], torch.arange(32) % 4,
                                                       intact=True),
         LabelError, ("labels out of range", "3 at index 3", "3 classes", "valid labels are 0..2")),
    Case("negative label", lambda t: train(mlp(), blobs()[0], torch.where(torch.arange(32) == 20, -1, 0),
                                           intact=True), LabelError, ("-1 at index 20", "0..2")),
    Case("label 2 for one logit", lambda t: train(mlp(classes=1), blobs()[0], torch.arange(32) % 3,
                                                  loss_fn=lambda o, y: F.binary_cross_entropy_with_logits(
                                                      o.squeeze(1), y.float()), intact=True),
         LabelError, ("2 at index 2", "valid labels are 0..1")),
    Case("bad labels in the validation data", lambda t: train(mlp(), *blobs(), val=TensorLoader(
        blobs()[0], blobs()[1] + 5, 8, shuffle=False)), LabelError, ("evaluation data", "valid labels are 0..2")),
    # --- empty data sets, batch sizes ---------------------------------------------------------------------------
    Case("empty TensorLoader", lambda t: TensorLoader(torch.zeros(0, 2), torch.zeros(0)), ValueError, ("empty",)),
    Case("empty batch list into fit", lambda t: fit(mlp(), [], loss_fn=F.cross_entropy,
                                                    optimizer=torch.optim.SGD(mlp().parameters(), 0.1), epochs=1,
                                                    progress=False), ValueError, ("no batches", "empty")),
    Case("empty split", lambda t: __import__("esc_course.data.split", fromlist=["s"]).split(
        torch.zeros(0, 2), torch.zeros(0)), ValueError, ("empty",)),
    Case("batch larger than the data (drop_last)", lambda t: TensorLoader(torch.zeros(5, 2), torch.zeros(5), 8,
                                                                          drop_last=True),
         ValueError, ("batch_size=8", "5 samples", "batch_size <= 5")),
    Case("batch size 0", lambda t: TensorLoader(torch.zeros(5, 2), torch.zeros(5), 0), ValueError,
         ("batch_size", "0", "positive integer")),
    Case("batch size 0 for image loaders", lambda t: __import__("esc_course.data.vision", fromlist=["v"]).loaders(
        "digits", batch_size=0), ValueError, ("batch_size", "0", "positive integer")),
    Case("batch size 0 in a lab", lambda t: lab_run("cnn", "--batch_size=0"), ValueError, ("batch_size", "0")),
    Case("batch larger than the data for image loaders", lambda t: __import__(
        "esc_course.data.vision", fromlist=["v"]).loaders("digits", batch_size=100_000), ValueError,
         ("batch_size", "100000")),
    # --- non-finite inputs --------------------------------------------------------------------------------------
    Case("NaN in the first batch", lambda t: train(mlp(), *with_nan(2), intact=True), NonFiniteInputError,
         ("first batch", "1 NaN", "sample 2")),
    Case("NaN later in the data", lambda t: train(mlp(), *with_nan(25)), NonFiniteLossError,
         ("epoch 1, step 4", "x holds 1 NaN", "sample 25")),
    Case("inf in regression targets", lambda t: train(mlp(classes=1), blobs()[0], torch.where(
        torch.arange(32) == 30, float("inf"), 0.0).unsqueeze(1), loss_fn=F.mse_loss, metrics=()),
         NonFiniteLossError, ("epoch 1, step 4", "y holds 0 NaN and 1 inf", "sample 30")),
    # --- learning rates <= 0 ------------------------------------------------------------------------------------
    Case("lr = 0 into fit", lambda t: train(mlp(), *blobs(), lr=0.0, intact=True), ValueError,
         ("learning rate", "lr=0.0", "positive")),
    Case("lr < 0 through a custom optimizer", lambda t: fit(
        mlp(), TensorLoader(*blobs()), loss_fn=F.cross_entropy, optimizer=_NegativeLR(mlp().parameters()), epochs=1,
        progress=False), ValueError, ("learning rate", "lr=-0.5", "positive")),
    Case("lr < 0 into get_optimizer", lambda t: __import__("esc_course.optim.optimizers", fromlist=["o"])
         .get_optimizer("sgd", mlp().parameters(), lr=-0.1), ValueError, ("lr", "-0.1", "> 0")),
    Case("lr = 0 into get_optimizer", lambda t: __import__("esc_course.optim.optimizers", fromlist=["o"])
         .get_optimizer("adam", mlp().parameters(), lr=0.0), ValueError, ("lr", "0.0", "> 0")),
    Case("lr = 0 in a lab", lambda t: lab_run("xor", "--lr=0"), ValueError, ("learning rate", "lr=0.0", "positive")),
    Case("lr < 0 in a lab", lambda t: lab_run("xor", "--lr=-0.5"), ValueError, ("lr", "-0.5", "> 0")),
    # --- data folders -----------------------------------------------------------------------------------------
    Case("missing image folder", lambda t: __import__("esc_course.data.real", fromlist=["r"]).image_folder(
        t / "nope"), FileNotFoundError, ("nope", "does not exist", "<class name>/<image>.png")),
    Case("image folder without class folders", lambda t: __import__("esc_course.data.real", fromlist=["r"])
         .image_folder(empty_folder(t)), FileNotFoundError, ("no images found", "one sub-folder per class")),
    Case("missing MNIST files", lambda t: __import__("esc_course.data.vision", fromlist=["v"]).vision(
        "mnist", root=t), FileNotFoundError, ("'mnist'", "missing", "train-images-idx3-ubyte",
                                              "esc-course data fetch mnist")),
    Case("missing CIFAR-10 files in a lab", lambda t: lab_run("cnn", "--dataset=cifar10", f"--data_dir={t}"),
         FileNotFoundError, ("'cifar10'", "missing", "esc-course data fetch cifar10")),
    Case("folder data set without a root", lambda t: __import__("esc_course.data.vision", fromlist=["v"]).vision(
        "folder"), ValueError, ("root=",)),
    Case("missing text file", lambda t: __import__("esc_course.data.text", fromlist=["t"]).load_text(t / "x.txt"),
         FileNotFoundError, ("x.txt", "does not exist")),
    # --- CUDA asked for where there is none ---------------------------------------------------------------------
    Case("get_device('cuda')", lambda t: get_device("cuda"), DeviceError,
         ("device='cuda'", "CUDA is not available", "Available: cpu", "'auto'"), cuda_free=True),
    Case("fit(device='cuda')", lambda t: train(mlp(), *blobs(), device="cuda", intact=True), DeviceError,
         ("device='cuda'", "not available", "Available: cpu"), cuda_free=True),
    Case("--device=cuda in a lab", lambda t: lab_run("xor", "--device=cuda"), DeviceError,
         ("device='cuda'", "CUDA is not available"), cuda_free=True),
    Case("ESC_DEVICE=cuda", lambda t: _with_env("ESC_DEVICE", "cuda", lambda: get_device("auto")), DeviceError,
         ("ESC_DEVICE='cuda'", "Available: cpu"), cuda_free=True),
    # --- other arguments of fit and friends ---------------------------------------------------------------------
    Case("negative epochs", lambda t: train(mlp(), *blobs(), epochs=-1), ValueError, ("epochs", "-1", "non-negative")),
    Case("fractional epochs", lambda t: train(mlp(), *blobs(), epochs=2.5), ValueError, ("epochs", "2.5")),
    Case("negative epochs in a lab", lambda t: lab_run("xor", "--epochs=-3"), ValueError, ("epochs", "-3")),
    Case("unknown scheduler_interval", lambda t: train(mlp(), *blobs(), scheduler_interval="batch"), ValueError,
         ("scheduler_interval", "'batch'", "'step'")),
    Case("checkpoint_every = 0", lambda t: train(mlp(), *blobs(), checkpoint_every=0, checkpoint_dir=t), ValueError,
         ("checkpoint_every", "0", "positive")),
    Case("negative checkpoint_seconds", lambda t: train(mlp(), *blobs(), checkpoint_seconds=-1, checkpoint_dir=t),
         ValueError, ("checkpoint_seconds", "-1", ">= 0")),
    Case("resume without a checkpoint_dir", lambda t: train(mlp(), *blobs(), resume=True), ValueError,
         ("resume=True", "checkpoint_dir")),
    Case("a model that is not a module", lambda t: fit(lambda x: x, TensorLoader(*blobs()), loss_fn=F.mse_loss,
                                                       optimizer=torch.optim.SGD(mlp().parameters(), 0.1), epochs=1),
         TypeError, ("model", "torch.nn.Module", "function")),
    Case("negative seed", lambda t: __import__("esc_course.seed", fromlist=["s"]).seed_everything(-1), ValueError,
         ("seed", "-1", "[0, 2**32)")),
    Case("bad dropout", lambda t: MLP(2, dropout=1.5), ValueError, ("dropout", "1.5", "[0, 1)")),
    Case("non-positive layer size", lambda t: MLP(2, hidden=(0,)), ValueError, ("hidden=(0,)", "positive")),
]


class _NegativeLR(torch.optim.SGD):
    """A custom optimizer that does not check its learning rate (as a student's might not)."""

    def __init__(self, params):
        super().__init__(params, lr=0.1)
        for group in self.param_groups:
            group["lr"] = -0.5


def _with_env(key, value, fn):
    import os

    old = os.environ.get(key)
    os.environ[key] = value
    try:
        return fn()
    finally:
        if old is None:
            os.environ.pop(key)
        else:
            os.environ[key] = old


def _param(case: Case):
    marks = []
    if case.gap:
        marks.append(pytest.mark.xfail(strict=True, reason=f"gap: {case.gap}"))
    if case.cuda_free:
        marks.append(pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA"))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_gets_a_clear_error(case, tmp_path):
    with pytest.raises(case.error) as err:
        case.call(tmp_path)
    message = str(err.value)
    missing = [f for f in case.fragments if f not in message]
    assert not missing, f"the message lacks {missing}:\n{message}"


def test_the_table_covers_every_kind_of_bad_input_the_issue_lists():
    kinds = {
        "unknown lab": "unknown lab", "data set name": "unknown data set", "model name": "unknown CNN",
        "optimizer name": "unknown optimizer", "activation name": "unknown activation",
        "schedule name": "unknown schedule", "shape into a model": "channels != in_channels (Conv2d)",
        "dtype into fit": "float64 inputs into a float32 model", "labels out of range": "label >= number of classes",
        "empty data set": "empty TensorLoader", "batch larger than the data": "batch larger than the data (drop_last)",
        "non-finite inputs": "NaN in the first batch", "lr <= 0": "lr = 0 into fit",
        "missing data folder": "missing image folder", "wrong folder layout": "image folder without class folders",
        "CUDA where there is none": "get_device('cuda')",
    }
    ids = {c.id for c in CASES}
    assert set(kinds.values()) <= ids
    assert len(ids) == len(CASES), "case ids must be unique"


def test_ignore_index_labels_are_valid_for_two_class_outputs():
    """cross_entropy's ignore_index (-100) masks targets; with (N, 2) outputs it must not count as out of range."""
    x = torch.randn(8, 2)
    y = torch.tensor([0, 1, -100, 1, 0, -100, 1, 0])
    model = nn.Linear(2, 2)
    history = fit(model, TensorLoader(x, y, 4, shuffle=False), loss_fn=F.cross_entropy,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, metrics=(), progress=False)
    assert len(history) == 1
