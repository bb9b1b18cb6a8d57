"""Week 7: recurrent networks (RNN, LSTM, GRU), long-term dependencies and a character-level language model.

A vanilla tanh RNN multiplies its gradient by one Jacobian per step back in time, so ||dL/dh_t|| vanishes (or
explodes) geometrically; the LSTM's additive cell path with an open forget gate keeps it level from the start, and a
GRU learns to. Measured here: the gradient norms against t (at initialisation and after training), gradient
clipping rescuing an exploding RNN, the adding problem (Hochreiter and Schmidhuber 1997) at several lengths with
RNN, LSTM and GRU of the same parameter budget, sine-wave forecasting, and a character-level LSTM language model on
the bundled text (or any --text-file) with samples at several temperatures.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from esc_course.config import quick_variant
from esc_course.data import TensorLoader
from esc_course.data.sequences import ADDING_BASELINE_MSE, adding_problem, persistence_mse, sine_forecasting
from esc_course.data.text import CharVocab, TBPTTLoader, corpus, load_text, split_text, unigram_loss
from esc_course.device import get_device
from esc_course.models import count_parameters
from esc_course.models.rnn import (
    CELLS,
    CharLM,
    SequenceRegressor,
    hidden_size_for_budget,
    hidden_state_gradients,
    per_step_cross_entropy,
)
from esc_course.runs import LabResult, finish
from esc_course.seed import seed_everything
from esc_course.train import NonFiniteLossError, evaluate, fit

HEADLINE = "lm_val_loss"
HEADLINE_MODE = "min"


@dataclass
class Config:
    # gradient flow
    grad_length: int = 100          # steps of the adding-problem sequences on which ||dL/dh_t|| is measured
    # gradient clipping on an exploding RNN (tanh, W_hh = explode_gain x orthogonal, plain SGD, sine forecasting)
    explode_gain: float = 1.5       # every singular value of the recurrent weights at init (> 1: can explode)
    explode_lr: float = 0.1         # SGD step size of both runs
    explode_window: int = 40        # steps per input sequence (the gradient can grow by explode_gain per step)
    clip_norm: float = 1.0          # max global gradient norm of the clipped run
    clip_epochs: int = 10           # epochs of each run
    # adding problem
    adding_lengths: tuple[int, ...] = (10, 25, 50, 100, 200)  # sequence lengths T
    param_budget: int = 4700        # parameters per model; each cell's hidden size is matched to it
    adding_train: int = 10000       # training sequences per length
    adding_val: int = 1000          # validation sequences per length
    adding_epochs: int = 12         # epochs per model and length
    adding_batch: int = 64          # sequences per step
    adding_lr: float = 0.01         # Adam step size
    forget_bias: float = 3.0        # added to the LSTM forget-gate bias at init (remember by default)
    # sine forecasting
    sine_steps: int = 2000          # length of the noisy two-sine series
    sine_window: int = 40           # steps seen before each one-step-ahead forecast
    sine_hidden: int = 32           # hidden units of each forecaster
    sine_epochs: int = 15           # epochs per forecaster
    # character-level language model
    corpus: str = "english"         # bundled corpus: english, korean or all (see esc_course/data/bundled)
    text_file: str = ""             # a UTF-8 text file to train on instead of the bundled corpus
    lm_cell: str = "lstm"           # rnn, lstm or gru
    lm_embed: int = 64              # character embedding size
    lm_hidden: int = 256            # hidden units per layer
    lm_layers: int = 1              # stacked recurrent layers
    lm_dropout: float = 0.4         # dropout between layers and before the output layer (the text is small)
    lm_batch: int = 32              # parallel text streams per batch (TBPTT)
    bptt: int = 100                 # characters per truncated-BPTT chunk
    lm_epochs: int = 30             # passes over the training text
    lm_lr: float = 0.003            # Adam step size
    val_fraction: float = 0.1       # the tail of the text held out for validation
    temperatures: tuple[float, ...] = (0.5, 1.0, 1.5)  # sampling temperatures
    sample_chars: int = 300         # characters generated per sample
    prompt: str = ""                # start of every sample; empty: the text's first line
    korean_batch: int = 8           # notebook's Korean run: streams per batch (its text is ~9x shorter than the
    korean_epochs: int = 20         # English one, so fewer streams give each epoch enough steps) and epochs
    cpu_threads: int = 1            # torch CPU threads during the run (0 = leave as is): the per-step matrices
                                    # of these small recurrent nets are too small to gain from more
    seed: int = 0
    device: str = "auto"
    quick: bool = False             # small, fast variant for CPU CI and weak laptops


QUICK = dict(grad_length=60, clip_epochs=6, adding_lengths=(16,), adding_train=2048, adding_val=512,
             adding_epochs=8, sine_steps=600, sine_window=20, sine_epochs=5, lm_embed=32, lm_hidden=128,
             lm_dropout=0.0, bptt=50, lm_epochs=3, sample_chars=120)


@contextmanager
def torch_threads(n: int):
    """Run with ``n`` intra-op CPU threads and restore the previous number afterwards (0: leave it)."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def mse_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, y)


def last(history: dict, key: str) -> float:
    """The last value of a history column; NaN when the run stopped before its first epoch ended."""
    values = history.get(key, [])
    return values[-1] if values else math.nan


def sub_folder(checkpoint_dir: Path | str | None, name: str) -> dict:
    """``fit``'s checkpoint arguments for one experiment: its own stable folder ``checkpoint_dir / name``,
    resumed when it holds a checkpoint; nothing when ``checkpoint_dir`` is None."""
    if checkpoint_dir is None:
        return {}
    return {"checkpoint_dir": Path(checkpoint_dir) / name, "resume": True}


def regressor(cell: str, input_size: int, hidden: int, forget_bias: float) -> SequenceRegressor:
    """A many-to-one regressor; the LSTM gets ``forget_bias`` added to its forget-gate bias (the others none)."""
    return SequenceRegressor(input_size, hidden, cell=cell, forget_bias=forget_bias if cell == "lstm" else 0.0)


def budget_hidden_sizes(param_budget: int, cells=tuple(CELLS)) -> dict[str, int]:
    """Hidden size per cell so that every adding-problem model (2 inputs, 1 output) has about ``param_budget``
    parameters."""
    return {cell: hidden_size_for_budget(cell, 2, 1, param_budget) for cell in cells}


def check_cells(cells, argument: str = "cells") -> None:
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        raise ValueError(f"{argument} must be a non-empty selection of {', '.join(CELLS)}, got {tuple(cells)!r}")


@dataclass
class SequenceSplit:
    """Sequences x (N, T, features) and targets y (N, out) cut into a training and a validation part."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


def adding_data(lengths=(10, 25, 50, 100, 200), *, train_size: int = 10000, val_size: int = 1000,
                seed: int = 0) -> dict[int, SequenceSplit]:
    """Adding-problem sequences for each length T: ``train_size`` training and ``val_size`` validation ones."""
    if not lengths:
        raise ValueError("lengths (adding_lengths) must hold at least one sequence length, e.g. (25, 50)")
    data = {}
    for length in lengths:
        x, y = adding_problem(train_size, length, generator=seed * 1000 + length)
        xv, yv = adding_problem(val_size, length, generator=seed * 1000 + length + 1)
        data[length] = SequenceSplit(x, y, xv, yv)
    return data


def sine_data(steps: int = 2000, *, window: int = 40, seed: int = 3) -> SequenceSplit:
    """Windows of ``window`` steps of the noisy two-sine series and the next value; the first 80 % (the past)
    train, the last 20 % (the future) validate: a random split would leak neighbouring windows."""
    x, y = sine_forecasting(steps, window=window, generator=seed)
    cut = int(0.8 * len(x))
    return SequenceSplit(x[:cut], y[:cut], x[cut:], y[cut:])


def train_loader(data: SequenceSplit, batch_size: int, seed: int, device) -> TensorLoader:
    return TensorLoader(data.x_train, data.y_train, batch_size=batch_size, device=device,
                        generator=torch.Generator().manual_seed(seed))


def val_loader(data: SequenceSplit, device) -> TensorLoader:
    return TensorLoader(data.x_val, data.y_val, batch_size=512, shuffle=False, device=device)


# -- 1. the adding problem -----------------------------------------------------------------------------------

@dataclass
class AddingResult:
    rows: list[dict]                      # one per (length, cell): hidden, params, val_mse, baseline_mse, ratio
    histories: dict[str, dict]            # "lstm_T50" -> History.to_dict()
    models: dict[str, SequenceRegressor]  # cell -> the model trained at the longest length

    def row(self, cell: str, length: int | None = None) -> dict:
        """The row of ``cell`` at ``length`` (default: the longest length)."""
        length = max(r["length"] for r in self.rows) if length is None else length
        return next(r for r in self.rows if r["cell"] == cell and r["length"] == length)


def adding_study(data: dict[int, SequenceSplit], *, cells=tuple(CELLS), param_budget: int = 4700,
                 epochs: int = 12, batch_size: int = 64, lr: float = 0.01, forget_bias: float = 3.0, seed: int = 0,
                 device="cpu", checkpoint_dir: Path | None = None) -> AddingResult:
    """RNN, LSTM and GRU with the same parameter budget on the adding problem at each length of ``data``
    (``adding_data``): Adam, gradients clipped to norm 1. Measures the validation MSE (squared units of the
    target, a sum of two numbers in [0, 1]) against always answering 1.0 (MSE 1/6)."""
    check_cells(cells)
    device = get_device(device)
    rows, histories, models = [], {}, {}
    hidden_sizes = budget_hidden_sizes(param_budget, cells)
    for length, split in data.items():
        baseline = float((split.y_val - 1.0).pow(2).mean())  # always answering 1.0, the mean of the target
        for cell in cells:
            seed_everything(seed)
            model = regressor(cell, 2, hidden_sizes[cell], forget_bias).to(device)
            history = fit(model, train_loader(split, batch_size, seed, device), val_loader(split, device),
                          loss_fn=mse_loss, epochs=epochs, device=device, clip_grad_norm=1.0, metrics=(),
                          optimizer=torch.optim.Adam(model.parameters(), lr=lr), progress=False,
                          desc=f"adding T={length} {cell}", **sub_folder(checkpoint_dir, f"adding-T{length}-{cell}"))
            mse = last(history.to_dict(), "val_loss")
            histories[f"{cell}_T{length}"] = history.to_dict()
            if length == max(data):
                models[cell] = model
            rows.append({"length": length, "cell": cell, "hidden": hidden_sizes[cell],
                         "params": count_parameters(model), "val_mse": mse, "baseline_mse": baseline,
                         "mse_over_baseline": mse / baseline})
    return AddingResult(rows, histories, models)


def adding_figure(result: AddingResult):
    """Validation MSE against the sequence length, one line per cell, and the constant-answer baseline."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(1, size=(5.5, 4.0))
    lengths = sorted({r["length"] for r in result.rows})
    for cell in dict.fromkeys(r["cell"] for r in result.rows):
        ax.plot(lengths, [result.row(cell, n)["val_mse"] for n in lengths], "o-", label=cell)
    ax.axhline(ADDING_BASELINE_MSE, color="k", ls="--", label="always 1.0 (MSE 1/6)")
    ax.set(xlabel="sequence length T", ylabel="validation MSE", yscale="log", title="Adding problem")
    if len(lengths) == 1:
        ax.set_xticks(lengths)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


# -- 2. gradient flow ----------------------------------------------------------------------------------------

@dataclass
class GradientFlowResult:
    curves: dict[str, dict[str, list[float]]]  # stage ("init", "trained") -> model -> ||dL/dh_t|| for t = 1..T
    rows: list[dict]                           # per (model, stage): the norm at the first and last step, ratio

    def ratio(self, model: str, stage: str) -> float:
        """||dL/dh_1|| / ||dL/dh_T||: how much of the last step's gradient reaches the first step."""
        return next(r["first_over_last"] for r in self.rows if r["model"] == model and r["stage"] == stage)


def exploding_rnn(input_size: int, *, gain: float = 1.5, hidden: int = 32) -> SequenceRegressor:
    """A tanh RNN whose recurrent weights are ``gain`` x a random orthogonal matrix: with every singular
    value above 1 the backward pass can grow by that factor per step (Pascanu et al. 2013, arXiv:1211.5063)."""
    model = SequenceRegressor(input_size, hidden, cell="rnn")
    with torch.no_grad():
        torch.nn.init.orthogonal_(model.rnn.weight_hh_l0, gain=gain)
    return model


def gradient_probe(length: int = 100, *, n: int = 256, seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` adding-problem sequences of ``length`` steps on which the gradient norms are measured."""
    return adding_problem(n, length, generator=seed)


def gradient_flow_study(probe: tuple[torch.Tensor, torch.Tensor], trained: dict[str, torch.nn.Module], *,
                        param_budget: int = 4700, forget_bias: float = 3.0, explode_gain: float = 1.5,
                        seed: int = 0, device="cpu") -> GradientFlowResult:
    """||dL/dh_t|| (mean over the probe's sequences; L = MSE at the last step) against t, for each cell at
    initialisation (same parameter budget, plus the exploding RNN) and for the ``trained`` models (cell -> model,
    e.g. ``AddingResult.models``)."""
    device = get_device(device)
    x, y = (t.to(device) for t in probe)
    seed_everything(seed)
    fresh = {cell: regressor(cell, 2, h, forget_bias) for cell, h in budget_hidden_sizes(param_budget).items()}
    fresh[f"rnn_gain_{explode_gain:g}"] = exploding_rnn(2, gain=explode_gain)
    curves, rows = {"init": {}, "trained": {}}, []
    for stage, models in (("init", fresh), ("trained", trained)):
        for name, model in models.items():
            norms = hidden_state_gradients(model.to(device), x, y, mse_loss).cpu()
            curves[stage][name] = norms.tolist()
            first, final = float(norms[0]), float(norms[-1])
            rows.append({"model": name, "stage": stage, "grad_norm_last_step": final, "grad_norm_first_step": first,
                         "first_over_last": first / final if final > 0 else math.inf})
    return GradientFlowResult(curves, rows)


def gradient_flow_figure(result: GradientFlowResult):
    """||dL/dh_t|| against t on a log scale: at initialisation (left) and after training (right)."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(5.0, 3.8))
    for ax, (stage, stage_curves) in zip(axes, result.curves.items()):
        for i, (name, norms) in enumerate(stage_curves.items()):
            ax.plot(range(1, len(norms) + 1), norms, label=name, color=f"C{i}")
        ax.set(yscale="log", xlabel="time step t", ylabel="||dL/dh_t|| (mean over batch)",
               title=f"{stage}: loss at the last step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    return fig


# -- 3. gradient clipping ------------------------------------------------------------------------------------

@dataclass
class ClippingResult:
    rows: list[dict]             # per run: clip_grad_norm, diverged_at_epoch, epochs_done, final_val_mse, ...
    histories: dict[str, dict]   # run name -> History.to_dict() (up to the divergence)

    def run(self, clipped: bool) -> dict:
        return next(r for r in self.rows if (r["clip_grad_norm"] is not None) == clipped)


def train_until_nonfinite(model, train, val, *, epochs: int, **kwargs) -> tuple[dict, int | None]:
    """``fit`` that keeps the history when the loss becomes NaN/inf; returns (history columns, diverged epoch)."""
    seen = {}

    def keep(epoch, history):
        seen["history"] = history

    try:
        history = fit(model, train, val, epochs=epochs, on_epoch=keep, progress=False, **kwargs)
        return history.to_dict(), None
    except NonFiniteLossError as err:
        history = seen.get("history")
        return (history.to_dict() if history is not None else {}), err.epoch


def clipping_study(data: SequenceSplit, *, explode_gain: float = 1.5, lr: float = 0.1, clip_norm: float = 1.0,
                   epochs: int = 10, seed: int = 0, device="cpu",
                   checkpoint_dir: Path | None = None) -> ClippingResult:
    """The exploding RNN (``exploding_rnn``) trained with plain SGD on ``data`` (sine forecasting), without and
    with the global gradient norm clipped to ``clip_norm``. Measures the validation MSE (squared units of the
    series) and the epoch at which the loss became NaN/inf (None: it never did)."""
    device = get_device(device)
    histories, rows = {}, []
    for name, clip in (("no_clipping", None), (f"clip_{clip_norm:g}", clip_norm)):
        seed_everything(seed)  # the same initial weights and batch order for both runs
        model = exploding_rnn(1, gain=explode_gain).to(device)
        history, diverged = train_until_nonfinite(
            model, train_loader(data, 64, seed, device), val_loader(data, device), loss_fn=mse_loss,
            optimizer=torch.optim.SGD(model.parameters(), lr=lr), epochs=epochs, device=device,
            clip_grad_norm=clip, metrics=(), **sub_folder(checkpoint_dir, f"clip-{name}"))
        histories[name] = history
        rows.append({"run": name, "clip_grad_norm": clip, "diverged_at_epoch": diverged,
                     "epochs_done": len(history.get("val_loss", [])),
                     "final_val_mse": last(history, "val_loss") if diverged is None else math.inf,
                     "max_train_mse": max(history.get("train_loss", [math.inf]))})
    return ClippingResult(rows, histories)


def clipping_figure(result: ClippingResult):
    """Training MSE per epoch (log scale) of the exploding RNN without and with clipping."""
    from matplotlib.ticker import MaxNLocator

    from esc_course.viz import history_figure

    fig = history_figure(result.histories, keys=("train_loss",), log_y=True,
                         title="Exploding RNN under SGD\n(a line ends where the loss became NaN)")
    fig.axes[0].set_ylabel("training MSE (log scale)")
    fig.axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
    return fig


# -- 4. sine forecasting -------------------------------------------------------------------------------------

@dataclass
class ForecastResult:
    rows: list[dict]                       # per cell: test_mse and the persistence baseline's MSE
    predictions: dict[str, torch.Tensor]   # cell -> the first 200 test forecasts; "target" -> the true values


def forecasting_study(data: SequenceSplit, *, cells=tuple(CELLS), hidden: int = 32, epochs: int = 15,
                      lr: float = 0.01, forget_bias: float = 3.0, seed: int = 0, device="cpu",
                      checkpoint_dir: Path | None = None) -> ForecastResult:
    """One-step-ahead forecasts of the noisy two-sine series (``sine_data``): each cell (Adam, batches of 32)
    against the persistence baseline "the next value is the last one". MSE in squared units of the series."""
    check_cells(cells)
    device = get_device(device)
    val = val_loader(data, device)
    persistence = persistence_mse(data.x_val, data.y_val)
    rows, predictions = [], {}
    for cell in cells:
        seed_everything(seed)
        model = regressor(cell, 1, hidden, forget_bias).to(device)
        fit(model, train_loader(data, 32, seed, device), val, loss_fn=mse_loss, epochs=epochs, device=device,
            optimizer=torch.optim.Adam(model.parameters(), lr=lr), clip_grad_norm=1.0, metrics=(), progress=False,
            **sub_folder(checkpoint_dir, f"sine-{cell}"))
        rows.append({"cell": cell, "test_mse": evaluate(model, val, mse_loss, device, metrics=())["loss"],
                     "persistence_mse": persistence})
        with torch.no_grad():
            predictions[cell] = model.eval()(data.x_val[:200].to(device)).squeeze(-1).cpu()
    predictions["target"] = data.y_val[:200, 0]
    return ForecastResult(rows, predictions)


def forecast_figure(result: ForecastResult):
    """The first 200 test steps: the true series and each cell's one-step-ahead forecast."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(1, size=(7.0, 3.6))
    ax.plot(result.predictions["target"], "k", lw=2, alpha=0.4, label="target")
    for cell, values in result.predictions.items():
        if cell != "target":
            ax.plot(values, lw=1, label=cell)
    ax.set(xlabel="test step", ylabel="value", title="One-step-ahead sine forecasts (test period)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


# -- 5. character-level language model -----------------------------------------------------------------------

def lm_text(cfg: Config) -> tuple[str, str]:
    """(text, where it came from): ``text_file`` if given, else the bundled corpus."""
    if cfg.text_file:
        return load_text(cfg.text_file), cfg.text_file
    return corpus(cfg.corpus), f"bundled:{cfg.corpus}"


@dataclass
class LanguageModelResult:
    metrics: dict[str, float]   # lm_val_loss (nats/char), perplexity, bits/char, accuracy, the unigram baseline...
    history: dict               # History.to_dict(): train/val loss and accuracy per epoch
    samples: list[dict]         # one per temperature: {"temperature", "sample"}
    unseen: dict = field(default_factory=dict)  # the validation loss split by characters seen / unseen in training


@torch.no_grad()
def split_by_seen(model: CharLM, val: TBPTTLoader, train_ids: torch.Tensor, vocab_size: int) -> dict:
    """Validation cross-entropy (nats/char) of the model and of the unigram baseline, separately on characters
    that occur in the training text and on those that never do (a model trained on the text has pushed the
    latter's probabilities down; the add-one unigram gives each 1 / (N + V))."""
    model.eval()
    losses, targets = [], []
    for x, y in val:
        logits = model(x)
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none"))
        targets.append(y.reshape(-1))
    loss, target = torch.cat(losses).cpu(), torch.cat(targets).cpu()
    counts = torch.bincount(train_ids.cpu(), minlength=vocab_size).double()
    unigram = -((counts + 1.0) / (counts + 1.0).sum()).log()[target]
    seen = counts[target] > 0

    def mean(v, mask):
        return float(v[mask].mean()) if bool(mask.any()) else math.nan

    return {"val_chars": len(target), "unseen_fraction": float((~seen).double().mean()),
            "model_loss_seen": mean(loss, seen), "model_loss_unseen": mean(loss, ~seen),
            "unigram_loss_seen": mean(unigram.float(), seen), "unigram_loss_unseen": mean(unigram.float(), ~seen)}


def language_model_study(text: str, *, cell: str = "lstm", embed: int = 64, hidden: int = 256, layers: int = 1,
                         dropout: float = 0.4, batch: int = 32, bptt: int = 100, epochs: int = 30,
                         lr: float = 0.003, val_fraction: float = 0.1, temperatures=(0.5, 1.0, 1.5),
                         sample_chars: int = 300, prompt: str = "", seed: int = 0, device="cpu",
                         checkpoint_dir: Path | None = None) -> LanguageModelResult:
    """A character-level language model (CharLM) on ``text`` with truncated BPTT: the first part of the text
    trains, the tail (``val_fraction``) validates. Measures the validation cross-entropy in nats per character
    (perplexity = e^loss, bits = loss / ln 2) against the unigram (character-frequency) baseline, and samples
    ``sample_chars`` characters after ``prompt`` (default: the text's first line) at each temperature."""
    if cell not in CELLS:
        raise ValueError(f"lm_cell must be one of {', '.join(CELLS)}, got {cell!r}")
    device = get_device(device)
    vocab = CharVocab.from_text(text)
    train_ids, val_ids = split_text(vocab.encode(text), val_fraction)
    seed_everything(seed)
    model = CharLM(vocab, embed_dim=embed, hidden_size=hidden, num_layers=layers, cell=cell, dropout=dropout,
                   carry_state=True).to(device)
    streams = min(batch, max(1, len(train_ids) // (2 * bptt)))  # at least two chunks per stream
    train = TBPTTLoader(train_ids, streams, bptt, device)
    val = TBPTTLoader(val_ids, min(4, len(val_ids) // 2), bptt, device)  # few long streams: long context
    history = fit(model, train, val, loss_fn=per_step_cross_entropy, epochs=epochs, device=device,
                  optimizer=torch.optim.Adam(model.parameters(), lr=lr), clip_grad_norm=1.0,
                  metrics=("accuracy",), progress=False, desc="char LM", **sub_folder(checkpoint_dir, "char-lm"))
    h = history.to_dict()
    val_loss = last(h, "val_loss")
    metrics = {"lm_val_loss": val_loss, "lm_val_perplexity": math.exp(val_loss),
               "lm_val_bits_per_char": val_loss / math.log(2), "lm_val_accuracy": last(h, "val_accuracy"),
               "lm_train_loss": last(h, "train_loss"), "lm_best_val_loss": min(h["val_loss"]),
               "lm_unigram_val_loss": unigram_loss(train_ids, val_ids, len(vocab)),
               "lm_vocab_size": len(vocab), "lm_text_chars": len(text), "lm_params": count_parameters(model)}
    unseen = split_by_seen(model, val, train_ids, len(vocab))
    start = prompt or text.lstrip().splitlines()[0][:40]
    gen = torch.Generator().manual_seed(seed)
    samples = [{"temperature": t, "sample": model.sample(start, sample_chars, t, generator=gen)}
               for t in temperatures]
    return LanguageModelResult(metrics, h, samples, unseen)


def language_model_figure(result: LanguageModelResult):
    """Training and validation loss (nats/char) per epoch, with the unigram baseline on the validation panel."""
    from matplotlib.ticker import MaxNLocator

    from esc_course.viz import history_figure

    fig = history_figure({"char LM": result.history}, keys=("train_loss", "val_loss"))
    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
        ax.axhline(result.metrics["lm_unigram_val_loss"], color="k", ls="--", lw=1, label="unigram (val)")
        ax.set_ylabel(f"{ax.get_ylabel()} (nats/char)")
        ax.legend(fontsize=8)
    return fig


# -- the whole lab -------------------------------------------------------------------------------------------

def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    if cfg.lm_cell not in CELLS:
        raise ValueError(f"lm_cell must be one of {', '.join(CELLS)}, got {cfg.lm_cell!r}")
    if not cfg.adding_lengths:
        raise ValueError("adding_lengths must hold at least one sequence length, e.g. --adding_lengths=25,50")
    ckpt = Path(out) / "checkpoints" if out is not None else None
    text, source = lm_text(cfg)

    with torch_threads(cfg.cpu_threads if device.type == "cpu" else 0):
        data = adding_data(cfg.adding_lengths, train_size=cfg.adding_train, val_size=cfg.adding_val, seed=cfg.seed)
        adding = adding_study(data, param_budget=cfg.param_budget, epochs=cfg.adding_epochs,
                              batch_size=cfg.adding_batch, lr=cfg.adding_lr, forget_bias=cfg.forget_bias,
                              seed=cfg.seed, device=device, checkpoint_dir=ckpt)
        grads = gradient_flow_study(gradient_probe(cfg.grad_length, seed=cfg.seed + 7), adding.models,
                                    param_budget=cfg.param_budget, forget_bias=cfg.forget_bias,
                                    explode_gain=cfg.explode_gain, seed=cfg.seed, device=device)
        clip = clipping_study(sine_data(max(cfg.sine_steps, 10 * cfg.explode_window), window=cfg.explode_window,
                                        seed=cfg.seed + 11),
                              explode_gain=cfg.explode_gain, lr=cfg.explode_lr, clip_norm=cfg.clip_norm,
                              epochs=cfg.clip_epochs, seed=cfg.seed, device=device, checkpoint_dir=ckpt)
        sine = forecasting_study(sine_data(cfg.sine_steps, window=cfg.sine_window, seed=cfg.seed + 3),
                                 hidden=cfg.sine_hidden, epochs=cfg.sine_epochs, forget_bias=cfg.forget_bias,
                                 seed=cfg.seed, device=device, checkpoint_dir=ckpt)
        lm = language_model_study(text, cell=cfg.lm_cell, embed=cfg.lm_embed, hidden=cfg.lm_hidden,
                                  layers=cfg.lm_layers, dropout=cfg.lm_dropout, batch=cfg.lm_batch, bptt=cfg.bptt,
                                  epochs=cfg.lm_epochs, lr=cfg.lm_lr, val_fraction=cfg.val_fraction,
                                  temperatures=cfg.temperatures, sample_chars=cfg.sample_chars, prompt=cfg.prompt,
                                  seed=cfg.seed, device=device, checkpoint_dir=ckpt)

    metrics = {f"grad_first_over_last_{r['model']}_{r['stage']}": r["first_over_last"] for r in grads.rows}
    clipped, unclipped = clip.run(clipped=True), clip.run(clipped=False)
    metrics.update(clip_unclipped_diverged=float(unclipped["diverged_at_epoch"] is not None),
                   clip_unclipped_final_mse=unclipped["final_val_mse"], clip_final_mse=clipped["final_val_mse"])
    for r in adding.rows:
        metrics[f"adding_mse_{r['cell']}_T{r['length']}"] = r["val_mse"]
        metrics[f"adding_baseline_mse_T{r['length']}"] = r["baseline_mse"]
    metrics.update({f"sine_mse_{r['cell']}": r["test_mse"] for r in sine.rows})
    metrics["sine_persistence_mse"] = sine.rows[0]["persistence_mse"]
    metrics.update(lm.metrics)

    longest = max(cfg.adding_lengths)
    result = LabResult(
        lab="rnn", config=asdict(cfg), metrics=metrics,
        history={**{f"clip_{k}": v for k, v in clip.histories.items()},
                 **{f"adding_{k}": v for k, v in adding.histories.items()}, "char_lm": lm.history},
        tables={"gradient_flow": grads.rows, "clipping": clip.rows, "adding_problem": adding.rows,
                "sine_forecasting": sine.rows, "lm_samples": lm.samples,
                "lm_text": [{"source": source, "chars": lm.metrics["lm_text_chars"],
                             "vocab_size": lm.metrics["lm_vocab_size"], **lm.unseen}]},
        figures={"gradient_norms": gradient_flow_figure(grads), "adding_problem": adding_figure(adding),
                 "sine_forecasts": forecast_figure(sine), "clipping": clipping_figure(clip),
                 "char_lm": language_model_figure(lm)},
        captions={
            "gradient_norms": "Gradient norm ||dL/dh_t|| against the time step t (log scale) for RNN, LSTM and GRU "
                              "of the same parameter budget, at initialisation and after training on the adding "
                              f"problem at T={longest}.",
            "adding_problem": "Validation MSE on the adding problem against the sequence length, per cell, with "
                              "the constant-answer baseline 1/6.",
            "clipping": f"Training MSE of a tanh RNN with recurrent gain {cfg.explode_gain:g} under SGD, without "
                        f"and with the gradient norm clipped to {cfg.clip_norm:g}.",
            "sine_forecasts": "One-step-ahead forecasts of each cell on the first 200 test steps of the noisy "
                              "two-sine series.",
            "char_lm": "Training and validation cross-entropy (nats/char) of the character-level language model "
                       "per epoch, with the unigram baseline.",
            "gradient_flow": "First-step over last-step gradient norm per model, before and after training.",
            "sine_forecasting": "Test MSE of each cell against the persistence forecast (next value = last one).",
            "lm_samples": "Text sampled from the language model at each temperature.",
        },
        device=str(device),
    )
    return finish(result, out, started)


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("rnn"))
