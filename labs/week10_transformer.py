"""Week 10: attention and the Transformer, from scratch, against the LSTM and GRU of week 7.

Scaled dot-product attention, multi-head attention and a pre-norm block are written out in
``esc_course.scratch.attention`` (checked against PyTorch in the tests); the course's causal Transformer language
model (``esc_course.models.transformer``) trains with the fused kernel. Measured here: associative recall at growing
lengths, Transformer vs LSTM vs GRU at the same parameter count and the same number of training steps (a recurrent
model must carry every pair in its state, attention looks the pair up); what a trained head looks at; the same model
with and without position information on a task that needs order; a character language model on the bundled texts
(English and Korean) against an LSTM of the same size and training time, with samples and tokens per second; and
the cost of attention as the context grows (time against T, and the T x T scores it materialises).

Studies (each a notebook cell): ``recall_study``, ``attention_study``, ``positions_study``, ``lm_study``,
``attention_cost_study``.

Modes: ``--quick`` (seconds on a 2-core CPU: lengths 8 and 32, no GRU), the default full mode (minutes on a laptop
CPU: lengths 16..256), and on a GPU larger settings, e.g. ``esc-course lab run transformer --device=cuda
--recall_lengths=64,256,1024 --recall_train=32768 --d_model=64 --lm_d_model=128 --cost_lengths=256,1024,4096``
(the same code; attention then runs through the flash / memory-efficient SDPA kernels where they apply).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from esc_course.config import quick_variant
from esc_course.data import TensorLoader
from esc_course.data.recall import associative_recall, indexed_recall, recall_vocab_size
from esc_course.data.text import CharVocab, corpus, split_text, unigram_loss
from esc_course.device import get_device
from esc_course.models import count_parameters
from esc_course.models.rnn import CharLM, per_step_cross_entropy, recurrent_parameters
from esc_course.models.transformer import TransformerLM
from esc_course.runs import LabResult, finish
from esc_course.scratch.attention import scaled_dot_product_attention
from esc_course.seed import seed_everything
from esc_course.train import evaluate, fit

HEADLINE = "recall_longest_gap_T"   # the longest length the Transformer solves that the LSTM does not (0: none)
SOLVED = 0.9                        # recall accuracy that counts as "solved"
RECALL_MODELS = ("transformer", "lstm", "gru")


@dataclass
class Config:
    # associative recall (Transformer vs LSTM vs GRU)
    recall_lengths: tuple[int, ...] = (16, 32, 64, 128, 256)  # tokens per sequence (pairs + the query)
    recall_models: tuple[str, ...] = RECALL_MODELS
    recall_keys: int = 16           # distinct keys per dictionary
    recall_values: int = 8          # values a key can map to (chance accuracy = 1 / values)
    recall_train: int = 8192        # training sequences per length
    recall_val: int = 1000          # validation sequences per length
    recall_epochs: int = 4          # epochs per model and length (steps = epochs * train / batch)
    batch_size: int = 64            # sequences per step
    lr: float = 0.003               # Adam step size
    d_model: int = 32               # Transformer width
    n_heads: int = 2                # heads per block
    n_layers: int = 2               # blocks
    # positional information (indexed recall: needs order)
    positions_length: int = 16      # tokens per sequence
    positions_symbols: int = 8      # symbols
    positions_epochs: int = 8       # epochs per variant
    # character language model
    lm_corpora: tuple[str, ...] = ("english", "korean")  # bundled corpora
    lm_context: int = 64            # characters per training window
    lm_d_model: int = 64            # Transformer width (the LSTM's hidden size is matched to its parameter count)
    lm_layers: int = 2              # Transformer blocks
    lm_epochs: int = 30             # passes over the training windows (when lm_seconds is 0)
    lm_seconds: float = 20.0        # > 0: train each model for this wall time (equal time); 0: lm_epochs each
    lm_lr: float = 0.003            # Adam step size
    # the cost of attention
    cost_lengths: tuple[int, ...] = (64, 128, 256, 512, 1024)  # context lengths T timed
    cost_repeats: int = 5           # timed forward+backward passes per length (median)
    seed: int = 0
    device: str = "auto"
    quick: bool = False             # small, fast variant for CPU CI and weak laptops


QUICK = dict(recall_lengths=(8, 32), recall_models=("transformer", "lstm"), recall_train=2048, recall_val=500,
             recall_epochs=6, positions_epochs=6,
             lm_corpora=("english",), lm_context=32, lm_d_model=32, lm_epochs=3, lm_seconds=0.0,
             cost_lengths=(64, 128, 256), cost_repeats=3)


class LastPosition(nn.Module):
    """A sequence model's logits at the last position only: (B, T) ids -> (B, V), for tasks with one answer."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids)[:, -1]


def recurrent_lm(cell: str, vocab, budget: int, embed_dim: int) -> CharLM:
    """A recurrent language model (week 7's CharLM; ``vocab`` a CharVocab or a number of token ids) whose hidden
    size brings it closest to ``budget`` parameters."""
    vocab_size = vocab if isinstance(vocab, int) else len(vocab)

    def size(h: int) -> int:  # embedding + recurrent layer + output layer
        return vocab_size * embed_dim + recurrent_parameters(cell, embed_dim, h) + h * vocab_size + vocab_size
    best = min(range(1, 2049), key=lambda h: abs(size(h) - budget))
    return CharLM(vocab, embed_dim=embed_dim, hidden_size=best, cell=cell)


def build_model(kind: str, vocab, context: int, *, d_model: int, n_heads: int, n_layers: int,
                positions: str = "learned", budget: int | None = None) -> nn.Module:
    """'transformer', or 'lstm'/'gru' sized to ``budget`` parameters (default: the Transformer's); ``vocab`` is a
    number of token ids or a CharVocab."""
    vocab_size = vocab if isinstance(vocab, int) else len(vocab)
    if kind == "transformer":
        return TransformerLM(vocab_size, context=context, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                             positions=positions)
    if kind not in ("lstm", "gru", "rnn"):
        raise ValueError(f"unknown model {kind!r}; valid models: transformer, lstm, gru, rnn")
    if budget is None:
        budget = count_parameters(build_model("transformer", vocab_size, context, d_model=d_model, n_heads=n_heads,
                                              n_layers=n_layers, positions=positions))
    return recurrent_lm(kind, vocab, budget, embed_dim=d_model)


def _train_answer(model: nn.Module, x, y, xv, yv, *, epochs: int, batch_size: int, lr: float, seed: int, device,
                  checkpoint_dir: Path | None) -> tuple[float, float, dict]:
    """Train ``LastPosition(model)`` with cross-entropy; return (val accuracy, seconds, history)."""
    seed_everything(seed)
    net = LastPosition(model)
    train = TensorLoader(x, y, batch_size=batch_size, device=device, generator=torch.Generator().manual_seed(seed))
    val = TensorLoader(xv, yv, batch_size=512, shuffle=False, device=device)
    history = fit(net, train, None, loss_fn=F.cross_entropy, optimizer=torch.optim.Adam(net.parameters(), lr=lr),
                  epochs=epochs, device=device, progress=False, checkpoint_dir=checkpoint_dir,
                  resume=checkpoint_dir is not None)
    return evaluate(net, val, F.cross_entropy, device)["accuracy"], sum(history["seconds"]), history.to_dict()


# ---- 1. associative recall ----------------------------------------------------------------------------------

@dataclass
class RecallResult:
    rows: list[dict]                 # one per (model, length): accuracy, parameters, seconds
    chance: float                    # 1 / values
    models: dict[str, nn.Module] = field(default_factory=dict, repr=False)  # the trained Transformers, by length

    def accuracy(self, model: str, length: int) -> float:
        return next(r["accuracy"] for r in self.rows if r["model"] == model and r["length"] == length)

    def longest_gap(self, than: str = "lstm") -> int:
        """The longest length where the Transformer reaches SOLVED accuracy and ``than`` does not (0: none)."""
        lengths = sorted({r["length"] for r in self.rows})
        gaps = [t for t in lengths if self.accuracy("transformer", t) >= SOLVED and self.accuracy(than, t) < SOLVED]
        return max(gaps, default=0)


def recall_study(*, lengths=(16, 32, 64, 128, 256), models=RECALL_MODELS, keys: int = 16, values: int = 8,
                 train: int = 8192, val: int = 1000, epochs: int = 4, batch_size: int = 64, lr: float = 0.003,
                 d_model: int = 32, n_heads: int = 2, n_layers: int = 2, seed: int = 0, device=None,
                 checkpoint_dir: Path | None = None) -> RecallResult:
    """Associative recall accuracy (share of validation queries answered right; chance = 1/values) of each model
    at each length, every model with about the Transformer's parameter count and the same training steps."""
    device = get_device(device)
    vocab = recall_vocab_size(keys, values)
    rows, trained = [], {}
    for length in lengths:
        x, y = associative_recall(train, length, keys=keys, values=values, generator=seed + length)
        xv, yv = associative_recall(val, length, keys=keys, values=values, generator=10_000 + seed + length)
        for kind in models:
            seed_everything(seed)
            model = build_model(kind, vocab, length, d_model=d_model, n_heads=n_heads, n_layers=n_layers)
            sub = None if checkpoint_dir is None else checkpoint_dir / f"recall-{kind}-T{length}"
            acc, seconds, _ = _train_answer(model, x, y, xv, yv, epochs=epochs, batch_size=batch_size, lr=lr,
                                            seed=seed, device=device, checkpoint_dir=sub)
            rows.append({"model": kind, "length": length, "accuracy": acc, "parameters": count_parameters(model),
                         "steps": epochs * math.ceil(train / batch_size), "seconds": seconds})
            if kind == "transformer":
                trained[length] = model
    return RecallResult(rows, 1.0 / values, trained)


def recall_figure(result: RecallResult):
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(5.2, 3.6))
    for kind in dict.fromkeys(r["model"] for r in result.rows):
        rows = [r for r in result.rows if r["model"] == kind]
        ax.plot([r["length"] for r in rows], [r["accuracy"] for r in rows], marker="o",
                label=f"{kind} ({rows[0]['parameters']:,} params)")
    ax.axhline(result.chance, color="gray", ls="--", lw=1, label=f"chance {result.chance:.3g}")
    ax.axhline(SOLVED, color="k", ls=":", lw=1, label=f"solved ({SOLVED:g})")
    ax.set(xscale="log", xlabel="sequence length T (pairs + query)", ylabel="validation accuracy", ylim=(0, 1.05),
           title="associative recall: same size, same steps")
    lengths = sorted({r["length"] for r in result.rows})
    ax.set_xticks(lengths, [str(t) for t in lengths])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


# ---- 2. what a trained head looks at ------------------------------------------------------------------------

@dataclass
class AttentionResult:
    maps: list[torch.Tensor]         # per block: (examples, heads, T, T) weights
    tokens: torch.Tensor             # (examples, T) the inputs
    match: torch.Tensor              # (examples, T) True where the pair holds the queried key
    rows: list[dict]                 # per (block, head): mean weight the query puts on the matching pairs


def attention_study(model: TransformerLM, *, length: int, keys: int = 16, values: int = 8, examples: int = 256,
                    seed: int = 0) -> AttentionResult:
    """The attention weights of a recall Transformer on fresh inputs; for each head, the share of the query's
    attention (last row, summing to 1) that falls on the pairs holding the queried key (if the head looks the
    pair up: near 1; spread evenly: their share of the positions)."""
    device = next(model.parameters()).device
    x, _ = associative_recall(examples, length, keys=keys, values=values, generator=20_000 + seed)
    maps = [m.cpu() for m in model.attention_maps(x.to(device))]
    asked = x[:, -1] - keys * values                                 # the queried key
    match = torch.zeros_like(x, dtype=torch.bool)
    match[:, :-1] = (x[:, :-1] // values) == asked[:, None]
    rows = [{"block": b + 1, "head": h + 1,
             "weight_on_match": float((m[:, h, -1] * match).sum(-1).mean()),
             "share_of_positions": float(match.float().sum(-1).div(length).mean())}
            for b, m in enumerate(maps) for h in range(m.shape[1])]
    return AttentionResult(maps, x, match, rows)


def attention_figure(result: AttentionResult, example: int = 0):
    """Top: every head's (T, T) weights for one input. Bottom: the query token's row (what the answer is read
    from), the pairs holding the queried key in red."""
    from esc_course.viz import new_figure

    heads = [(b, h) for b, m in enumerate(result.maps) for h in range(m.shape[1])]
    fig, axes = new_figure(len(heads), 2, size=(3.3, 3.0))
    T = result.tokens.shape[1]
    hit = result.match[example].tolist()
    for col, (b, h) in enumerate(heads):
        weights = result.maps[b][example, h].numpy()
        top, bottom = axes[col], axes[len(heads) + col]
        im = top.imshow(weights, cmap="viridis", vmin=0, vmax=1)
        top.set(title=f"block {b + 1}, head {h + 1}", xlabel="key position", ylabel="query position")
        bottom.bar(range(T), weights[-1], color=["C3" if m else "C7" for m in hit])
        bottom.set(ylim=(0, 1), xlabel="key position", ylabel="weight of the query token",
                   title=f"query row: {float((weights[-1] * hit).sum()):.2f} on the key's pairs (red)")
        bottom.title.set_fontsize(8)
    fig.colorbar(im, ax=axes[: len(heads)], shrink=0.8, label="attention weight")
    return fig


# ---- 3. positional information ------------------------------------------------------------------------------

@dataclass
class PositionsResult:
    rows: list[dict]                 # per variant: accuracy
    chance: float


def positions_study(*, length: int = 16, symbols: int = 8, variants=("learned", "sinusoidal", "none"),
                    train: int = 8192, val: int = 1000, epochs: int = 8, batch_size: int = 64, lr: float = 0.003,
                    d_model: int = 32, n_heads: int = 2, n_layers: int = 2, seed: int = 0, device=None,
                    checkpoint_dir: Path | None = None) -> PositionsResult:
    """Indexed recall ("which symbol stood at position i?") accuracy of the same Transformer with learned,
    sinusoidal and no position information (chance = 1/symbols)."""
    device = get_device(device)
    x, y = indexed_recall(train, length, symbols=symbols, generator=seed + 1)
    xv, yv = indexed_recall(val, length, symbols=symbols, generator=seed + 2)
    rows = []
    for positions in variants:
        seed_everything(seed)
        model = TransformerLM(symbols + length - 1, context=length, d_model=d_model, n_heads=n_heads,
                              n_layers=n_layers, positions=positions)
        sub = None if checkpoint_dir is None else checkpoint_dir / f"positions-{positions}"
        acc, seconds, _ = _train_answer(model, x, y, xv, yv, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                        device=device, checkpoint_dir=sub)
        rows.append({"positions": positions, "accuracy": acc, "seconds": seconds})
    return PositionsResult(rows, 1.0 / symbols)


def positions_figure(result: PositionsResult):
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(4.4, 3.4))
    names = [r["positions"] for r in result.rows]
    ax.bar(names, [r["accuracy"] for r in result.rows], color=["C0", "C1", "C7"][: len(names)])
    ax.axhline(result.chance, color="gray", ls="--", lw=1, label=f"chance {result.chance:.3g}")
    ax.set(ylim=(0, 1.05), xlabel="position information", ylabel="validation accuracy",
           title="indexed recall needs order")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


# ---- 4. character language model ------------------------------------------------------------------------------

@dataclass
class LMResult:
    rows: list[dict]                 # per (corpus, model): val loss, perplexity, tokens/s, parameters
    histories: dict[str, dict]       # "corpus/model" -> History.to_dict()
    samples: list[dict]              # per (corpus, model): a sampled continuation

    def value(self, corpus_name: str, model: str, key: str) -> float:
        return next(r[key] for r in self.rows if r["corpus"] == corpus_name and r["model"] == model)


def char_windows(ids: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows of ``context`` ids and their next-id targets: x, y (N, context)."""
    n = (len(ids) - 1) // context
    if n < 1:
        raise ValueError(f"the text ({len(ids)} characters) is shorter than one window of context={context}")
    x = ids[: n * context].reshape(n, context)
    y = ids[1: n * context + 1].reshape(n, context)
    return x, y


def _sample(model: nn.Module, vocab: CharVocab, prompt: str, n: int, seed: int) -> str:
    g = torch.Generator().manual_seed(seed)
    if isinstance(model, TransformerLM):
        return vocab.decode(model.generate(vocab.encode(prompt), n, temperature=0.8, generator=g))
    return model.sample(prompt, n, temperature=0.8, generator=g)


def lm_study(*, corpora=("english", "korean"), context: int = 64, d_model: int = 64, n_layers: int = 2,
             n_heads: int = 4, epochs: int = 30, seconds: float = 20.0, batch_size: int = 32, lr: float = 0.003,
             val_fraction: float = 0.1, seed: int = 0, device=None,
             checkpoint_dir: Path | None = None) -> LMResult:
    """Next-character validation loss (nats per character; the uniform guess is ln(vocab), the unigram guess the
    text's character entropy), tokens per second of training, and samples, for a Transformer and an LSTM of about
    the same parameter count, trained for the same epochs (or, with ``seconds`` > 0, the same wall time)."""
    device = get_device(device)
    rows, histories, samples = [], {}, []
    for name in corpora:
        text = corpus(name)
        vocab = CharVocab.from_text(text)
        train_ids, val_ids = split_text(vocab.encode(text), val_fraction)
        x, y = char_windows(train_ids, context)
        xv, yv = char_windows(val_ids, context)
        budget = None
        for kind in ("transformer", "lstm"):
            seed_everything(seed)
            model = build_model(kind, vocab, context, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                                budget=budget)
            budget = budget or count_parameters(model)
            train = TensorLoader(x, y, batch_size=batch_size, device=device,
                                 generator=torch.Generator().manual_seed(seed))
            val = TensorLoader(xv, yv, batch_size=256, shuffle=False, device=device)
            stop = (lambda epoch, h: sum(h["seconds"]) >= seconds) if seconds > 0 else None
            sub = None if checkpoint_dir is None else checkpoint_dir / f"lm-{name}-{kind}"
            history = fit(model, train, None, loss_fn=per_step_cross_entropy,
                          optimizer=torch.optim.Adam(model.parameters(), lr=lr),
                          epochs=epochs if seconds <= 0 else 10_000, device=device, progress=False, metrics=(),
                          on_epoch=stop, checkpoint_dir=sub, resume=sub is not None)
            loss = evaluate(model, val, per_step_cross_entropy, device, metrics=())["loss"]
            spent = sum(history["seconds"])
            rows.append({"corpus": name, "model": kind, "parameters": count_parameters(model),
                         "epochs": len(history), "val_loss": loss, "perplexity": math.exp(loss),
                         "tokens_per_s": len(history) * x.numel() / max(spent, 1e-9), "seconds": spent,
                         "uniform_loss": math.log(len(vocab)),
                         "unigram_loss": unigram_loss(train_ids, val_ids, len(vocab))})
            histories[f"{name}/{kind}"] = history.to_dict()
            samples.append({"corpus": name, "model": kind,
                            "sample": _sample(model, vocab, text[:12], 120, seed)})
    return LMResult(rows, histories, samples)


def lm_figure(result: LMResult):
    from esc_course.viz import new_figure

    names = list(dict.fromkeys(r["corpus"] for r in result.rows))
    fig, axes = new_figure(len(names), size=(4.6, 3.4))
    for ax, name in zip(axes, names):
        for key, h in result.histories.items():
            if key.startswith(f"{name}/"):
                ax.plot(range(1, len(h["train_loss"]) + 1), h["train_loss"], label=f"{key.split('/')[1]} (train)")
        for r in result.rows:
            if r["corpus"] == name:
                ax.scatter([r["epochs"]], [r["val_loss"]], marker="*", s=90, zorder=3,
                           label=f"{r['model']} val {r['val_loss']:.3f}")
        unigram = result.value(name, "lstm", "unigram_loss")
        ax.axhline(unigram, color="gray", ls="--", lw=1, label=f"unigram {unigram:.2f}")
        ax.set(xlabel="epoch", ylabel="loss (nats / character)", title=f"character LM: {name}")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


# ---- 5. the cost of attention --------------------------------------------------------------------------------

@dataclass
class CostResult:
    rows: list[dict]                 # per T: ms per forward+backward of each implementation, score bytes


def attention_cost_study(*, lengths=(64, 128, 256, 512, 1024), batch: int = 4, heads: int = 4, head_dim: int = 16,
                         repeats: int = 5, device=None) -> CostResult:
    """Milliseconds per forward + backward pass (median of ``repeats``) of causal self-attention written out, of
    torch's fused scaled_dot_product_attention, and of an LSTM layer of the same width, at each context length T;
    and the bytes of the (B, H, T, T) score matrix the written-out attention materialises (it grows as T^2; the
    fused kernels on CUDA avoid keeping it)."""
    device = get_device(device)
    width = heads * head_dim
    lstm = nn.LSTM(width, width, batch_first=True).to(device)

    def timed(fn) -> float:
        times = []
        for _ in range(repeats + 1):  # the first pass warms up
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn().sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        return 1000 * sorted(times[1:])[len(times[1:]) // 2]

    rows = []
    for T in lengths:
        q, k, v = (torch.randn(batch, heads, T, head_dim, device=device, requires_grad=True) for _ in range(3))
        seq = torch.randn(batch, T, width, device=device, requires_grad=True)
        rows.append({"T": T,
                     "scratch_ms": timed(lambda q=q, k=k, v=v: scaled_dot_product_attention(q, k, v, is_causal=True)[0]),
                     "fused_ms": timed(lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
                     "lstm_ms": timed(lambda seq=seq: lstm(seq)[0]),
                     "score_bytes": batch * heads * T * T * 4})
    return CostResult(rows)


def attention_cost_figure(result: CostResult):
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.6, 3.4))
    T = [r["T"] for r in result.rows]
    for key, label in (("scratch_ms", "attention, written out"), ("fused_ms", "fused SDPA"), ("lstm_ms", "LSTM")):
        axes[0].plot(T, [r[key] for r in result.rows], marker="o", label=label)
    axes[0].set(xscale="log", yscale="log", xlabel="context length T", ylabel="ms per forward + backward",
                title="time against T")
    axes[1].plot(T, [r["score_bytes"] / 2**20 for r in result.rows], marker="o", color="C3")
    axes[1].set(xscale="log", yscale="log", xlabel="context length T", ylabel="MiB",
                title="the (B, H, T, T) scores: memory ~ T^2")
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    for ax in axes:
        ax.set_xticks(T, [str(t) for t in T])
        ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig


# ---- the lab ------------------------------------------------------------------------------------------------

def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    ckpt = Path(out) / "checkpoints" if out is not None else None
    sizes = dict(d_model=cfg.d_model, n_heads=cfg.n_heads, n_layers=cfg.n_layers)

    recall = recall_study(lengths=cfg.recall_lengths, models=cfg.recall_models, keys=cfg.recall_keys,
                          values=cfg.recall_values, train=cfg.recall_train, val=cfg.recall_val,
                          epochs=cfg.recall_epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                          device=device, checkpoint_dir=ckpt, **sizes)
    longest = max(cfg.recall_lengths)
    attention = attention_study(recall.models[longest], length=longest, keys=cfg.recall_keys,
                                values=cfg.recall_values, seed=cfg.seed)
    positions = positions_study(length=cfg.positions_length, symbols=cfg.positions_symbols,
                                train=cfg.recall_train, val=cfg.recall_val, epochs=cfg.positions_epochs,
                                batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, device=device,
                                checkpoint_dir=ckpt, **sizes)
    lm = lm_study(corpora=cfg.lm_corpora, context=cfg.lm_context, d_model=cfg.lm_d_model, n_layers=cfg.lm_layers,
                  epochs=cfg.lm_epochs, seconds=cfg.lm_seconds, lr=cfg.lm_lr, seed=cfg.seed, device=device,
                  checkpoint_dir=ckpt)
    cost = attention_cost_study(lengths=cfg.cost_lengths, repeats=cfg.cost_repeats, device=device)

    first = cfg.lm_corpora[0]
    m = {f"recall_accuracy_{r['model']}_T{r['length']}": r["accuracy"] for r in recall.rows}
    m.update({HEADLINE: recall.longest_gap("lstm"), "recall_chance": recall.chance,
              "attention_on_match": max(r["weight_on_match"] for r in attention.rows),
              **{f"positions_{r['positions']}_accuracy": r["accuracy"] for r in positions.rows},
              "lm_val_loss_transformer": lm.value(first, "transformer", "val_loss"),
              "lm_val_loss_lstm": lm.value(first, "lstm", "val_loss"),
              "lm_uniform_loss": lm.value(first, "lstm", "uniform_loss"),
              "tokens_per_s_transformer": lm.value(first, "transformer", "tokens_per_s"),
              "tokens_per_s_lstm": lm.value(first, "lstm", "tokens_per_s")})
    for name in cfg.lm_corpora[1:]:
        m.update({f"lm_val_loss_{model}_{name}": lm.value(name, model, "val_loss") for model in ("transformer", "lstm")})
    gap = m[HEADLINE]
    captions = {
        "recall": (f"Associative recall at the same parameter count and steps: the Transformer solves up to T={gap}, "
                   f"where the LSTM does not." if gap else "Associative recall: at these settings no length separates "
                   "the Transformer from the LSTM (see the table)."),
        "attention": f"The best head puts {m['attention_on_match']:.2f} of the query's attention on the pairs that "
                     f"hold the queried key (T={longest}; spread evenly it would be "
                     f"{attention.rows[0]['share_of_positions']:.2f}).",
        "positions": "Indexed recall with learned, sinusoidal and no position information: " + ", ".join(
            f"{r['positions']} {r['accuracy']:.2f}" for r in positions.rows) + ".",
        "lm": f"Character LM on '{first}': Transformer {m['lm_val_loss_transformer']:.3f} vs LSTM "
              f"{m['lm_val_loss_lstm']:.3f} nats/char (uniform {m['lm_uniform_loss']:.2f}).",
        "attention_cost": "Time per forward+backward against the context length, and the T x T scores' memory.",
    }
    result = LabResult(
        lab="transformer", config=asdict(cfg), metrics=m, history=lm.histories,
        tables={"recall": recall.rows, "attention": attention.rows, "positions": positions.rows, "lm": lm.rows,
                "lm_samples": lm.samples, "attention_cost": cost.rows},
        figures={"recall": recall_figure(recall), "attention": attention_figure(attention),
                 "positions": positions_figure(positions), "lm": lm_figure(lm),
                 "attention_cost": attention_cost_figure(cost)},
        captions=captions, device=str(device))
    return finish(result, out, started)


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("transformer"))
