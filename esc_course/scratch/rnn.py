"""Recurrent cells from scratch: ``RNNCell``, ``LSTMCell``, ``GRUCell``, written out gate by gate.

Each cell has the same parameter names, shapes and gate order as ``torch.nn.RNNCell`` / ``LSTMCell`` /
``GRUCell``, so ``mine.load_state_dict(torch_cell.state_dict())`` gives the same outputs and, through autograd,
the same gradients (the tests check both). ``unroll`` runs a cell over a sequence; backpropagation through
time (BPTT) is then ordinary backpropagation through the unrolled graph. ``tanh_rnn_bptt`` does that backward
pass by hand for the vanilla cell, which shows where vanishing and exploding gradients come from:

    dL/dh_{t-1} = W_hh^T [(1 - h_t^2) * dL/dh_t]        (one Jacobian factor per step back in time)
"""

from __future__ import annotations

import math

import torch
from torch import nn

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class _Cell(nn.Module):
    """Shared parameters: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``/``bias_hh`` (G*H,).

    G is the number of gate blocks stacked along the first axis (1 for the vanilla cell, 3 for GRU, 4 for LSTM);
    initialised like PyTorch: uniform(-1/sqrt(H), 1/sqrt(H)) for every parameter.
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        g = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(g, input_size))
        self.weight_hh = nn.Parameter(torch.empty(g, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(g)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(g)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _input_part(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, I) -> x W_ih^T + b_ih, shape (B, G*H)."""
        out = x @ self.weight_ih.T
        return out + self.bias_ih if self.bias_ih is not None else out

    def _hidden_part(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, H) -> h W_hh^T + b_hh, shape (B, G*H)."""
        out = h @ self.weight_hh.T
        return out + self.bias_hh if self.bias_hh is not None else out

    def _check(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Accept (B, I) or one unbatched sample (I,), like torch's cells; return (B, I) and whether to squeeze."""
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects input of shape (B, {self.input_size}) or "
                             f"({self.input_size},), got {tuple(x.shape)}")
        return (x.unsqueeze(0), True) if x.ndim == 1 else (x, False)

    def _zeros(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class RNNCell(_Cell):
    """Vanilla (Elman) cell: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh). ``nonlinearity`` 'tanh' or 'relu'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        x, unbatched = self._check(x)
        h = self._zeros(x) if h is None else (h.unsqueeze(0) if unbatched else h)
        pre = self._input_part(x) + self._hidden_part(h)
        out = torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)
        return out.squeeze(0) if unbatched else out


class LSTMCell(_Cell):
    """Long short-term memory (Hochreiter and Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    Gates in PyTorch's order i, f, g, o:  i, f, o = sigmoid(.), g = tanh(.),
    c' = f * c + i * g  (the additive cell path that lets gradients flow far back), h' = o * tanh(c').
    """

    gates = 4

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        x, unbatched = self._check(x)
        if state is None:
            h, c = self._zeros(x), self._zeros(x)
        else:
            h, c = (s.unsqueeze(0) for s in state) if unbatched else state
        i, f, g, o = (self._input_part(x) + self._hidden_part(h)).chunk(4, dim=1)  # each (B, H)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(_Cell):
    """Gated recurrent unit (Cho et al. 2014), in PyTorch's form with gates r, z, n:

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h.
    """

    gates = 3

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        x, unbatched = self._check(x)
        h = self._zeros(x) if h is None else (h.unsqueeze(0) if unbatched else h)
        xr, xz, xn = self._input_part(x).chunk(3, dim=1)
        hr, hz, hn = self._hidden_part(h).chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)  # the reset gate scales the hidden part only, bias b_hn included
        out = (1 - z) * n + z * h
        return out.squeeze(0) if unbatched else out


CELLS: dict[str, type[_Cell]] = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


def get_cell(name: str) -> type[_Cell]:
    """The from-scratch cell class for 'rnn', 'lstm' or 'gru'."""
    try:
        return CELLS[name]
    except KeyError:
        raise ValueError(f"unknown cell {name!r}; valid cells: {', '.join(CELLS)}") from None


def _hidden(state: State) -> torch.Tensor:
    return state[0] if isinstance(state, tuple) else state


def unroll(cell: _Cell, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
    """Run ``cell`` over x (B, T, I), batch first; return (hidden states (B, T, H), final state).

    The final state is h (B, H), or (h, c) for the LSTM: the same as torch.nn.RNN/GRU/LSTM with one layer and
    ``batch_first=True`` (their h_n has an extra leading layer axis).
    """
    if x.ndim != 3:
        raise ValueError(f"unroll expects x of shape (B, T, I), got {tuple(x.shape)}")
    outputs = []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        outputs.append(_hidden(state))
    return torch.stack(outputs, dim=1), state


def tanh_rnn_bptt(cell: RNNCell, x: torch.Tensor, grad_hidden: torch.Tensor,
                  h0: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Backpropagation through time by hand for a tanh ``RNNCell`` (no autograd).

    Args:
        x: inputs (B, T, I); h0: initial state (B, H) or zeros.
        grad_hidden: dL/dh_t arriving directly from the loss at every step, (B, T, H) (zeros where the loss
            does not look at h_t; e.g. only the last step for a many-to-one task).
    Returns:
        ``{"hidden": (B, T, H) states, "dh": (B, T, H) total dL/dh_t (direct + through later steps),
        "dh0": (B, H), "weight_ih", "weight_hh", "bias_ih", "bias_hh": parameter gradients}``.
    """
    if cell.nonlinearity != "tanh":
        raise ValueError(f"tanh_rnn_bptt needs a tanh cell, got nonlinearity={cell.nonlinearity!r}")
    B, T, _ = x.shape
    if grad_hidden.shape != (B, T, cell.hidden_size):
        raise ValueError(f"grad_hidden must have shape {(B, T, cell.hidden_size)}, got {tuple(grad_hidden.shape)}")
    with torch.no_grad():
        h_prev = x.new_zeros(B, cell.hidden_size) if h0 is None else h0
        hs = []
        for t in range(T):  # forward, keeping every h_t for the backward pass
            h_prev = cell(x[:, t], h_prev)
            hs.append(h_prev)
        hidden = torch.stack(hs, dim=1)
        w_ih, w_hh = torch.zeros_like(cell.weight_ih), torch.zeros_like(cell.weight_hh)
        b = torch.zeros(cell.weight_ih.shape[0], dtype=x.dtype, device=x.device)
        dh = torch.zeros_like(hidden)
        carry = torch.zeros(B, cell.hidden_size, dtype=x.dtype, device=x.device)  # dL/dh_t from step t+1
        for t in reversed(range(T)):
            dh[:, t] = grad_hidden[:, t] + carry
            da = dh[:, t] * (1 - hidden[:, t] ** 2)  # through tanh: (B, H)
            before = hidden[:, t - 1] if t > 0 else (h0 if h0 is not None else torch.zeros_like(carry))
            w_ih += da.T @ x[:, t]
            w_hh += da.T @ before
            b += da.sum(0)
            carry = da @ cell.weight_hh  # dL/dh_{t-1} = W_hh^T da, batched as da W_hh
    return {"hidden": hidden, "dh": dh, "dh0": carry, "weight_ih": w_ih, "weight_hh": w_hh,
            "bias_ih": b, "bias_hh": b.clone()}
