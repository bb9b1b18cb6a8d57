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
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from esc_course.config import quick_variant
from esc_course.data import TensorLoader
from esc_course.data.sequences import adding_problem, persistence_mse, sine_forecasting
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


def regressor(cell: str, input_size: int, hidden: int, cfg: Config, **kwargs) -> SequenceRegressor:
    bias = cfg.forget_bias if cell == "lstm" else 0.0
    return SequenceRegressor(input_size, hidden, cell=cell, forget_bias=bias, **kwargs)


def budget_hidden_sizes(cfg: Config) -> dict[str, int]:
    """Hidden size per cell so that every adding-problem model has about ``param_budget`` parameters."""
    return {cell: hidden_size_for_budget(cell, 2, 1, cfg.param_budget) for cell in CELLS}


# -- 1. gradient flow -----------------------------------------------------------------------------------------

def gradient_flow(cfg: Config, device, trained: dict) -> tuple[dict[str, dict[str, list[float]]], list[dict]]:
    """||dL/dh_t|| against t on adding-problem sequences of ``grad_length`` steps, for each cell at initialisation
    (and the exploding RNN) and after training on the adding problem (``trained``: cell -> model)."""
    x, y = adding_problem(256, cfg.grad_length, generator=cfg.seed + 7)
    x, y = x.to(device), y.to(device)
    seed_everything(cfg.seed)
    fresh = {cell: regressor(cell, 2, h, cfg) for cell, h in budget_hidden_sizes(cfg).items()}
    fresh[f"rnn_gain_{cfg.explode_gain:g}"] = exploding_rnn(2, cfg)
    curves, rows = {"init": {}, "trained": {}}, []
    for stage, models in (("init", fresh), ("trained", trained)):
        for name, model in models.items():
            norms = hidden_state_gradients(model.to(device), x, y, mse_loss).cpu()
            curves[stage][name] = norms.tolist()
            first, last = float(norms[0]), float(norms[-1])
            rows.append({"model": name, "stage": stage, "grad_norm_last_step": last, "grad_norm_first_step": first,
                         "first_over_last": first / last if last > 0 else math.inf})
    return curves, rows


# -- 2. gradient clipping ------------------------------------------------------------------------------------

def exploding_rnn(input_size: int, cfg: Config, hidden: int = 32) -> SequenceRegressor:
    """A tanh RNN whose recurrent weights are ``explode_gain`` x a random orthogonal matrix: with every singular
    value above 1 the backward pass can grow by that factor per step (Pascanu et al. 2013, arXiv:1211.5063)."""
    model = SequenceRegressor(input_size, hidden, cell="rnn")
    with torch.no_grad():
        torch.nn.init.orthogonal_(model.rnn.weight_hh_l0, gain=cfg.explode_gain)
    return model


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


def clipping(cfg: Config, device) -> tuple[dict, list[dict]]:
    """The exploding RNN trained with plain SGD on sine forecasting, without and with gradient clipping."""
    x, y = sine_forecasting(max(cfg.sine_steps, 10 * cfg.explode_window), window=cfg.explode_window,
                            generator=cfg.seed + 11)
    cut = int(0.8 * len(x))
    val = TensorLoader(x[cut:], y[cut:], batch_size=256, shuffle=False, device=device)
    histories, rows = {}, []
    for name, clip in (("no_clipping", None), (f"clip_{cfg.clip_norm:g}", cfg.clip_norm)):
        seed_everything(cfg.seed)  # the same initial weights and batch order for both runs
        model = exploding_rnn(1, cfg).to(device)
        train = TensorLoader(x[:cut], y[:cut], batch_size=64, device=device,
                             generator=torch.Generator().manual_seed(cfg.seed))
        history, diverged = train_until_nonfinite(
            model, train, val, loss_fn=mse_loss, optimizer=torch.optim.SGD(model.parameters(), lr=cfg.explode_lr),
            epochs=cfg.clip_epochs, device=device, clip_grad_norm=clip, metrics=())
        histories[name] = history
        losses = history.get("val_loss", [])
        rows.append({"run": name, "clip_grad_norm": clip, "diverged_at_epoch": diverged,
                     "epochs_done": len(losses), "final_val_mse": losses[-1] if losses and diverged is None
                     else math.inf, "max_train_mse": max(history.get("train_loss", [math.inf]))})
    return histories, rows


# -- 3. the adding problem -----------------------------------------------------------------------------------

def adding(cfg: Config, device, cells=tuple(CELLS)) -> tuple[list[dict], dict, dict]:
    """RNN, LSTM and GRU with the same parameter budget on the adding problem at each length.

    Returns (table rows, histories, the models trained at the longest length by cell).
    """
    rows, histories, models = [], {}, {}
    for length in cfg.adding_lengths:
        x, y = adding_problem(cfg.adding_train, length, generator=cfg.seed * 1000 + length)
        xv, yv = adding_problem(cfg.adding_val, length, generator=cfg.seed * 1000 + length + 1)
        baseline = float((yv - 1.0).pow(2).mean())  # always answering 1.0, the mean of the target
        val = TensorLoader(xv, yv, batch_size=512, shuffle=False, device=device)
        for cell in cells:
            hidden = budget_hidden_sizes(cfg)[cell]
            seed_everything(cfg.seed)
            model = regressor(cell, 2, hidden, cfg).to(device)
            train = TensorLoader(x, y, batch_size=cfg.adding_batch, device=device,
                                 generator=torch.Generator().manual_seed(cfg.seed))
            history = fit(model, train, val, loss_fn=mse_loss, epochs=cfg.adding_epochs, device=device,
                          optimizer=torch.optim.Adam(model.parameters(), lr=cfg.adding_lr), clip_grad_norm=1.0,
                          metrics=(), progress=False, desc=f"adding T={length} {cell}")
            mse = history["val_loss"][-1]
            histories[f"{cell}_T{length}"] = history.to_dict()
            if length == max(cfg.adding_lengths):
                models[cell] = model
            rows.append({"length": length, "cell": cell, "hidden": hidden, "params": count_parameters(model),
                         "val_mse": mse, "baseline_mse": baseline, "mse_over_baseline": mse / baseline})
    return rows, histories, models


# -- 4. sine forecasting -------------------------------------------------------------------------------------

def forecasting(cfg: Config, device) -> tuple[list[dict], dict]:
    """One-step-ahead forecasts of a noisy two-sine series: each cell against the persistence baseline."""
    x, y = sine_forecasting(cfg.sine_steps, window=cfg.sine_window, generator=cfg.seed + 3)
    cut = int(0.8 * len(x))  # train on the past, test on the future
    val = TensorLoader(x[cut:], y[cut:], batch_size=512, shuffle=False, device=device)
    rows, predictions = [], {}
    for cell in CELLS:
        seed_everything(cfg.seed)
        model = regressor(cell, 1, cfg.sine_hidden, cfg).to(device)
        train = TensorLoader(x[:cut], y[:cut], batch_size=32, device=device,
                             generator=torch.Generator().manual_seed(cfg.seed))
        fit(model, train, val, loss_fn=mse_loss, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
            epochs=cfg.sine_epochs, device=device, clip_grad_norm=1.0, metrics=(), progress=False)
        rows.append({"cell": cell, "test_mse": evaluate(model, val, mse_loss, device, metrics=())["loss"],
                     "persistence_mse": persistence_mse(x[cut:], y[cut:])})
        with torch.no_grad():
            predictions[cell] = model.eval()(x[cut:cut + 200].to(device)).squeeze(-1).cpu()
    predictions["target"] = y[cut:cut + 200, 0]
    return rows, predictions


# -- 5. character-level language model -----------------------------------------------------------------------

def lm_text(cfg: Config) -> tuple[str, str]:
    """(text, where it came from): ``text_file`` if given, else the bundled corpus."""
    if cfg.text_file:
        return load_text(cfg.text_file), cfg.text_file
    return corpus(cfg.corpus), f"bundled:{cfg.corpus}"


def language_model(cfg: Config, device) -> tuple[dict, dict, list[dict]]:
    """Train a CharLM with truncated BPTT; returns (metrics, history, samples at each temperature)."""
    text, source = lm_text(cfg)
    vocab = CharVocab.from_text(text)
    train_ids, val_ids = split_text(vocab.encode(text), cfg.val_fraction)
    seed_everything(cfg.seed)
    model = CharLM(vocab, embed_dim=cfg.lm_embed, hidden_size=cfg.lm_hidden, num_layers=cfg.lm_layers,
                   cell=cfg.lm_cell, dropout=cfg.lm_dropout, carry_state=True).to(device)
    streams = min(cfg.lm_batch, max(1, len(train_ids) // (2 * cfg.bptt)))  # at least two chunks per stream
    train = TBPTTLoader(train_ids, streams, cfg.bptt, device)
    val = TBPTTLoader(val_ids, min(4, len(val_ids) // 2), cfg.bptt, device)  # few long streams: long context
    history = fit(model, train, val, loss_fn=per_step_cross_entropy, epochs=cfg.lm_epochs, device=device,
                  optimizer=torch.optim.Adam(model.parameters(), lr=cfg.lm_lr), clip_grad_norm=1.0,
                  metrics=("accuracy",), progress=False, desc="char LM")
    val_loss = history["val_loss"][-1]
    metrics = {"lm_val_loss": val_loss, "lm_val_perplexity": math.exp(val_loss),
               "lm_val_bits_per_char": val_loss / math.log(2), "lm_val_accuracy": history["val_accuracy"][-1],
               "lm_train_loss": history["train_loss"][-1],
               "lm_unigram_val_loss": unigram_loss(train_ids, val_ids, len(vocab)),
               "lm_vocab_size": len(vocab), "lm_text_chars": len(text), "lm_params": count_parameters(model)}
    prompt = cfg.prompt or text.lstrip().splitlines()[0][:40]
    gen = torch.Generator().manual_seed(cfg.seed)
    samples = [{"temperature": t, "sample": model.sample(prompt, cfg.sample_chars, t, generator=gen)}
               for t in cfg.temperatures]
    metrics["lm_source"] = source
    return metrics, history.to_dict(), samples


def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    if cfg.lm_cell not in CELLS:
        raise ValueError(f"lm_cell must be one of {', '.join(CELLS)}, got {cfg.lm_cell!r}")
    if not cfg.adding_lengths:
        raise ValueError("adding_lengths must hold at least one sequence length, e.g. --adding_lengths=25,50")

    with torch_threads(cfg.cpu_threads if device.type == "cpu" else 0):
        adding_rows, adding_histories, trained = adding(cfg, device)
        curves, grad_rows = gradient_flow(cfg, device, trained)
        clip_histories, clip_rows = clipping(cfg, device)
        sine_rows, predictions = forecasting(cfg, device)
        lm_metrics, lm_history, samples = language_model(cfg, device)
    source = lm_metrics.pop("lm_source")

    metrics = {f"grad_first_over_last_{r['model']}_{r['stage']}": r["first_over_last"] for r in grad_rows}
    clipped, unclipped = clip_rows[1], clip_rows[0]
    metrics.update(clip_unclipped_diverged=float(unclipped["diverged_at_epoch"] is not None),
                   clip_unclipped_final_mse=unclipped["final_val_mse"], clip_final_mse=clipped["final_val_mse"])
    for r in adding_rows:
        metrics[f"adding_mse_{r['cell']}_T{r['length']}"] = r["val_mse"]
        metrics[f"adding_baseline_mse_T{r['length']}"] = r["baseline_mse"]
    metrics.update({f"sine_mse_{r['cell']}": r["test_mse"] for r in sine_rows})
    metrics["sine_persistence_mse"] = sine_rows[0]["persistence_mse"]
    metrics.update(lm_metrics)

    result = LabResult(
        lab="rnn", config=asdict(cfg), metrics=metrics,
        history={**{f"clip_{k}": v for k, v in clip_histories.items()},
                 **{f"adding_{k}": v for k, v in adding_histories.items()}, "char_lm": lm_history},
        tables={"gradient_flow": grad_rows, "clipping": clip_rows, "adding_problem": adding_rows,
                "sine_forecasting": sine_rows, "lm_samples": samples,
                "lm_text": [{"source": source, "chars": lm_metrics["lm_text_chars"],
                             "vocab_size": lm_metrics["lm_vocab_size"]}]},
        figures=figures(curves, clip_histories, adding_rows, predictions, lm_history), device=str(device),
    )
    return finish(result, out, started)


def figures(curves, clip_histories, adding_rows, predictions, lm_history) -> dict:
    """Gradient norms against t, clipping curves, adding MSE against length, forecasts, LM loss."""
    from esc_course.viz import history_figure, new_figure

    fig, axes = new_figure(2, size=(5.0, 3.8))
    for ax, (stage, stage_curves) in zip(axes, curves.items()):
        for name, norms in stage_curves.items():
            ax.plot(range(1, len(norms) + 1), norms, label=name)
        ax.set(yscale="log", xlabel="time step t", ylabel="||dL/dh_t|| (mean over batch)",
               title=f"dL/dh_t, loss at the last step ({stage})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    adding_fig, (ax2,) = new_figure(1, size=(5.5, 4.0))
    lengths = sorted({r["length"] for r in adding_rows})
    for cell in CELLS:
        ax2.plot(lengths, [next(r["val_mse"] for r in adding_rows if r["cell"] == cell and r["length"] == n)
                           for n in lengths], "o-", label=cell)
    ax2.plot(lengths, [next(r["baseline_mse"] for r in adding_rows if r["length"] == n) for n in lengths], "k--",
             label="always 1.0")
    ax2.set(xlabel="sequence length T", ylabel="validation MSE", yscale="log", title="Adding problem")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)

    sine_fig, (ax3,) = new_figure(1, size=(7.0, 3.6))
    ax3.plot(predictions["target"], "k", lw=2, alpha=0.4, label="target")
    for cell in CELLS:
        ax3.plot(predictions[cell], lw=1, label=cell)
    ax3.set(xlabel="test step", ylabel="value", title="One-step-ahead sine forecasts (test period)")
    ax3.legend(fontsize=8)

    return {"gradient_norms": fig, "adding_problem": adding_fig, "sine_forecasts": sine_fig,
            "clipping": history_figure(clip_histories, keys=("train_loss",), log_y=True,
                                       title="Exploding RNN: SGD with and without clipping"),
            "char_lm": history_figure({"char LM": lm_history}, keys=("train_loss", "val_loss"))}


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("rnn"))
