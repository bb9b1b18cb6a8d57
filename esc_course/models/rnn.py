"""Recurrent models on PyTorch's fused layers (nn.RNN / nn.LSTM / nn.GRU): a sequence classifier, a sequence
regressor and a character language model. Inputs are batch first: (B, T, features), or (B, T) ids for the LM.

The from-scratch cells in esc_course.scratch.rnn show what happens inside one step; these are for speed.
"""

from __future__ import annotations

import torch
from torch import nn

from esc_course.models.sampling import check_sampling, next_id

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks per layer: W = (GATES * H, in) and (GATES * H, H)


def get_cell(name: str) -> type[nn.RNNBase]:
    try:
        return CELLS[name]
    except KeyError:
        raise ValueError(f"unknown cell {name!r}; valid cells: {', '.join(CELLS)}") from None


def recurrent_layer(cell: str, input_size: int, hidden_size: int, *, num_layers: int = 1, dropout: float = 0.0,
                    nonlinearity: str = "tanh", forget_bias: float = 0.0) -> nn.RNNBase:
    """A batch-first nn.RNN/LSTM/GRU. ``nonlinearity`` applies to 'rnn' only ('tanh' or 'relu').

    ``forget_bias`` is added to the LSTM's forget-gate bias: 1.0 makes the cell remember by default at the
    start of training (Gers et al. 2000; Jozefowicz et al. 2015, "An empirical exploration of RNN architectures").
    """
    kind = get_cell(cell)
    if min(input_size, hidden_size, num_layers) < 1:
        raise ValueError(f"sizes must be positive, got input_size={input_size}, hidden_size={hidden_size}, "
                         f"num_layers={num_layers}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    kwargs = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    layer = kind(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                 dropout=dropout if num_layers > 1 else 0.0, **kwargs)
    if cell == "lstm" and forget_bias:
        with torch.no_grad():
            for name, p in layer.named_parameters():
                if name.startswith("bias_ih"):  # gate order i, f, g, o: the forget gate is the 2nd block
                    p[hidden_size:2 * hidden_size] += forget_bias
    return layer


def recurrent_parameters(cell: str, input_size: int, hidden_size: int, num_layers: int = 1) -> int:
    """Parameters of ``recurrent_layer(cell, input_size, hidden_size, num_layers=...)``, by formula."""
    get_cell(cell)  # validates the name
    g = GATES[cell]
    first = g * (hidden_size * input_size + hidden_size * hidden_size + 2 * hidden_size)
    rest = g * (2 * hidden_size * hidden_size + 2 * hidden_size)
    return first + (num_layers - 1) * rest


def hidden_size_for_budget(cell: str, input_size: int, out_features: int, budget: int, num_layers: int = 1) -> int:
    """The hidden size whose model (recurrent layer + linear head) has the parameter count closest to ``budget``,
    so that RNN, LSTM and GRU can be compared at the same size."""
    if budget < 1:
        raise ValueError(f"budget must be a positive number of parameters, got {budget}")

    def total(h: int) -> int:
        return recurrent_parameters(cell, input_size, h, num_layers) + h * out_features + out_features

    h = 1
    while total(h + 1) <= budget:
        h += 1
    return h + 1 if abs(total(h + 1) - budget) < abs(total(h) - budget) else h


class SequenceModel(nn.Module):
    """A recurrent layer and a linear head, on the last step's hidden state (many-to-one) or on every step
    (``per_step=True``, many-to-many). x (B, T, input_size) -> (B, out_features) or (B, T, out_features)."""

    def __init__(self, input_size: int, hidden_size: int, out_features: int, *, cell: str = "lstm",
                 num_layers: int = 1, dropout: float = 0.0, per_step: bool = False, nonlinearity: str = "tanh",
                 forget_bias: float = 0.0):
        super().__init__()
        self.rnn = recurrent_layer(cell, input_size, hidden_size, num_layers=num_layers, dropout=dropout,
                                   nonlinearity=nonlinearity, forget_bias=forget_bias)
        self.head = nn.Linear(hidden_size, out_features)
        self.cell, self.input_size, self.per_step = cell, input_size, per_step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects x of shape (B, T, {self.input_size}), "
                             f"got {tuple(x.shape)}")
        out, _ = self.rnn(x)  # (B, T, H): the top layer's hidden state at every step
        return self.head(out if self.per_step else out[:, -1])


class SequenceRegressor(SequenceModel):
    """Real-valued outputs from a sequence: forecasting, the adding problem. Use with MSE."""

    def __init__(self, input_size: int, hidden_size: int, out_features: int = 1, **kwargs):
        super().__init__(input_size, hidden_size, out_features, **kwargs)


class SequenceClassifier(SequenceModel):
    """Class logits from a sequence (or from every step with ``per_step=True``, e.g. the copy task). Use with
    cross-entropy; per step, flatten (B, T, C) -> (B*T, C) (``per_step_cross_entropy``)."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, **kwargs):
        super().__init__(input_size, hidden_size, num_classes, **kwargs)


def hidden_state_gradients(model: SequenceModel, x: torch.Tensor, y: torch.Tensor, loss_fn) -> torch.Tensor:
    """||dL/dh_t|| for t = 1..T of a many-to-one SequenceModel: (T,), the mean over the batch of the top layer's
    hidden-state gradient norm, with L = loss_fn(model(x), y).

    The sequence is fed one step at a time through the model's own recurrent layer, so every h_t is a tensor
    whose gradient autograd can keep; the result is the same function as ``model(x)``. A vanilla RNN's norms
    shrink (vanishing) or grow (exploding) geometrically with the distance T - t; gated cells can keep them level
    (an LSTM with an open forget gate from the start, a GRU once trained).
    The model's parameter gradients are left as they were.
    """
    if model.per_step:
        raise ValueError("hidden_state_gradients needs a many-to-one model (per_step=False)")
    saved = [p.grad for p in model.parameters()]
    hs, state = [], None
    with torch.enable_grad():
        for t in range(x.shape[1]):
            _, state = model.rnn(x[:, t:t + 1], state)
            h = state[0] if isinstance(state, tuple) else state  # (layers, B, H)
            h.retain_grad()
            hs.append(h)
        loss = loss_fn(model.head(hs[-1][-1]), y)  # the top layer's last state, as model(x) uses it
        loss.backward()
    for p, g in zip(model.parameters(), saved):
        p.grad = g
    return torch.stack([h.grad[-1].norm(dim=-1).mean() for h in hs]).detach()


def per_step_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every step: logits (B, T, C), target (B, T) int64."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


class CharLM(nn.Module):
    """Character-level language model: embedding -> recurrent layers -> dropout -> linear over the vocabulary.

    ``forward(x)`` maps ids (B, T) to next-character logits (B, T, V). With ``carry_state=True`` the final state
    of one call is the initial state of the next (detached, so gradients stop at the chunk edge): truncated BPTT
    over a TBPTTLoader. Switching mode (``model.train()``/``model.eval()``, which ``fit`` and ``evaluate`` do
    at the start of every pass) or a new batch size starts from zeros again; ``reset_state()`` does it by hand.

    ``vocab`` is the CharVocab (esc_course.data.text) that ``sample`` uses to turn text into ids and back, or the
    number of token ids for a model of other tokens (then ``sample`` is not available).
    """

    def __init__(self, vocab, *, embed_dim: int = 64, hidden_size: int = 256, num_layers: int = 1,
                 cell: str = "lstm", dropout: float = 0.0, carry_state: bool = False):
        super().__init__()
        self.vocab = None if isinstance(vocab, int) else vocab
        size = vocab if isinstance(vocab, int) else len(vocab)
        self.embed = nn.Embedding(size, embed_dim)
        self.rnn = recurrent_layer(cell, embed_dim, hidden_size, num_layers=num_layers, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, size)
        self.carry_state = carry_state
        self._state = None

    def step(self, x: torch.Tensor, state=None):
        """ids (B, T) and a state (or None for zeros) -> (logits (B, T, V), final state)."""
        if x.ndim != 2 or x.dtype != torch.long:
            raise ValueError(f"CharLM expects int64 ids of shape (B, T), got {x.dtype} {tuple(x.shape)}")
        out, state = self.rnn(self.embed(x), state)
        return self.head(self.drop(out)), state

    def forward(self, x: torch.Tensor, state=None) -> torch.Tensor:
        if state is None and self.carry_state:
            state = self._carried(x.shape[0])
        logits, state = self.step(x, state)
        if self.carry_state:
            self._state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        return logits

    def _carried(self, batch: int):
        first = self._state[0] if isinstance(self._state, tuple) else self._state
        return self._state if first is not None and first.shape[1] == batch else None

    def reset_state(self) -> None:
        self._state = None

    def train(self, mode: bool = True) -> CharLM:
        self.reset_state()  # a new pass over the data starts a new stream
        return super().train(mode)

    @torch.no_grad()
    def sample(self, prompt: str, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> str:
        """``prompt`` followed by ``n`` sampled characters.

        Each next character is drawn from softmax(logits / temperature): below 1 sharper (safer, more
        repetitive), above 1 flatter (more varied, more mistakes); 0 takes the most likely character.
        """
        if self.vocab is None:
            raise ValueError("this CharLM was built from a number of token ids, not a CharVocab: it cannot sample text")
        if not prompt:
            raise ValueError("prompt must hold at least one character to start from")
        check_sampling(n, temperature, "characters")
        was_training = self.training
        self.eval()
        try:
            device = self.head.weight.device
            logits, state = self.step(self.vocab.encode(prompt).to(device)[None], None)
            out = []
            for _ in range(n):
                nxt = next_id(logits[0, -1], temperature, generator)
                out.append(int(nxt))
                logits, state = self.step(nxt.view(1, 1), state)
        finally:
            self.train(was_training)
        return prompt + self.vocab.decode(out)
