"""Week 7 exercises: one step of an LSTM, a plain RNN and a GRU cell, with PyTorch's weight layout."""

from __future__ import annotations

import torch
from torch import nn

from esc_course.exercises._cases import randn
from esc_course.exercises.core import Case, Exercise


def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One LSTM step: x (N, I), h and c (N, H), w_ih (4H, I), w_hh (4H, H), b_ih and b_hh (4H,), the gates
    stacked in PyTorch's order i, f, g, o. Return (h, c) after the step."""
    # BEGIN SOLUTION
    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c
    # END SOLUTION


def rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    """One step of the plain (Elman) RNN: h' = tanh(x w_ih^T + b_ih + h w_hh^T + b_hh); x (N, I), h (N, H)."""
    # BEGIN SOLUTION
    return torch.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
    # END SOLUTION


def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    """One GRU step with PyTorch's layout: the gates stacked r, z, n in w_ih (3H, I), w_hh (3H, H), b_ih and
    b_hh (3H,); n = tanh(x_n + r * h_n) where h_n includes b_hh's part; h' = (1 - z) * n + z * h."""
    # BEGIN SOLUTION
    xr, xz, xn = (x @ w_ih.T + b_ih).chunk(3, dim=1)
    hr, hz, hn = (h @ w_hh.T + b_hh).chunk(3, dim=1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - z) * n + z * h
    # END SOLUTION


def _weights(gates, i, hid, seed, dtype):
    return (randn(gates * hid, i, seed=seed, dtype=dtype) * 0.5, randn(gates * hid, hid, seed=seed + 1, dtype=dtype)
            * 0.5, randn(gates * hid, seed=seed + 2, dtype=dtype) * 0.5,
            randn(gates * hid, seed=seed + 3, dtype=dtype) * 0.5)


def _torch_cell(kind, x, state, weights):
    cls = {"lstm": nn.LSTMCell, "rnn": nn.RNNCell, "gru": nn.GRUCell}[kind]
    cell = cls(x.shape[1], weights[1].shape[1]).to(x.dtype)
    with torch.no_grad():
        for p, w in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), weights):
            p.copy_(w)
        out = cell(x, state)
    return tuple(t.detach() for t in out) if isinstance(out, tuple) else out.detach()


SIZES = [("batch 1", 1, 3, 4, torch.float32), ("batch 3, input 5, hidden 2", 3, 5, 2, torch.float32),
         ("odd sizes: batch 5, input 7, hidden 3", 5, 7, 3, torch.float32), ("float64", 2, 3, 4, torch.float64)]


def _lstm_cases() -> list[Case]:
    order = ("PyTorch 의 게이트 순서(gate order)는 i, f, g, o 입니다: gates.chunk(4, dim=1) 의 순서 그대로 "
             "(input, forget, cell candidate, output).")
    cases = []
    for k, (name, n, i, hid, dtype) in enumerate(SIZES):
        x, h, c = randn(n, i, seed=k, dtype=dtype), randn(n, hid, seed=k + 10, dtype=dtype), \
            randn(n, hid, seed=k + 20, dtype=dtype)
        w = _weights(4, i, hid, 30 + 4 * k, dtype)
        cases.append(Case(name, (x, h, c, *w), _torch_cell("lstm", x, (h, c), w), order, rtol=1e-4, atol=1e-6))
    x, w = randn(2, 3, seed=50), _weights(4, 3, 4, 51, torch.float32)
    zero = torch.zeros(2, 4)
    cases.append(Case("zero state h = c = 0", (x, zero, zero, *w), _torch_cell("lstm", x, (zero, zero), w),
                      "c' = sigmoid(f) c + sigmoid(i) tanh(g); h' = sigmoid(o) tanh(c').", rtol=1e-4, atol=1e-6))
    return cases


def _simple_cases(kind: str, gates: int, hint: str) -> list[Case]:
    cases = []
    for k, (name, n, i, hid, dtype) in enumerate(SIZES):
        x, h = randn(n, i, seed=k, dtype=dtype), randn(n, hid, seed=k + 10, dtype=dtype)
        w = _weights(gates, i, hid, 30 + 4 * k, dtype)
        cases.append(Case(name, (x, h, *w), _torch_cell(kind, x, h, w), hint, rtol=1e-4, atol=1e-6))
    x, w = randn(2, 3, seed=50), _weights(gates, 3, 4, 51, torch.float32)
    zero = torch.zeros(2, 4)
    cases.append(Case("zero state h = 0", (x, zero, *w), _torch_cell(kind, x, zero, w), hint, rtol=1e-4, atol=1e-6))
    return cases


EXERCISES = [
    Exercise("week07.lstm_cell", lstm_cell,
             "LSTM 셀(cell) 한 걸음: 게이트(gate) i, f, g, o 를 PyTorch 의 순서대로 나누고 c, h 를 갱신하세요.",
             "One LSTM cell step: split the gates in PyTorch's order i, f, g, o and update c and h.",
             _lstm_cases, "gates = x w_ih^T + b_ih + h w_hh^T + b_hh; i, f, g, o = gates.chunk(4, 1)",
             outputs=("h", "c")),
    Exercise("week07.rnn_cell", rnn_cell,
             "기본 RNN 셀 한 걸음: h' = tanh(x w_ih^T + b_ih + h w_hh^T + b_hh).",
             "One step of the plain RNN cell: h' = tanh(x w_ih^T + b_ih + h w_hh^T + b_hh).",
             lambda: _simple_cases("rnn", 1, "두 bias (b_ih, b_hh) 를 모두 더하고 tanh 를 씁니다 (not relu)."),
             "torch.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)"),
    Exercise("week07.gru_cell", gru_cell,
             "GRU 셀 한 걸음: 게이트 r, z, n (PyTorch 의 순서), h' = (1 - z) n + z h.",
             "One GRU cell step: gates r, z, n (PyTorch's order), h' = (1 - z) n + z h.",
             lambda: _simple_cases("gru", 3, "PyTorch: n = tanh(x_n + r * (h w_hn^T + b_hn)), h' = (1 - z) * n + "
                                   "z * h (z 가 이전 상태 h 를 지킵니다)."),
             "x 쪽과 h 쪽을 따로 chunk(3, 1) 하고, r 은 h 쪽의 n 부분(b_hn 포함)에 곱합니다."),
]
