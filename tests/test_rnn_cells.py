"""The from-scratch recurrent cells match torch.nn's cells and layers: outputs and gradients."""

import pytest
import torch
from torch import nn

from esc_course.scratch.rnn import CELLS, GRUCell, LSTMCell, RNNCell, get_cell, tanh_rnn_bptt, unroll

TORCH_CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _pair(name, input_size=5, hidden_size=7, bias=True, **kw):
    torch.manual_seed(0)
    ref = TORCH_CELLS[name](input_size, hidden_size, bias=bias, **kw).double()
    mine = get_cell(name)(input_size, hidden_size, bias=bias, **kw).double()
    mine.load_state_dict(ref.state_dict())  # same names and shapes as torch's cells
    return mine, ref


def _state(name, batch, hidden, requires_grad=True):
    make = lambda: torch.randn(batch, hidden, dtype=torch.double, requires_grad=requires_grad)  # noqa: E731
    return (make(), make()) if name == "lstm" else make()


def _flat(out):
    return torch.cat([o.reshape(-1) for o in out]) if isinstance(out, tuple) else out.reshape(-1)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", list(CELLS))
def test_cell_matches_torch_outputs_and_gradients(name, bias):
    mine, ref = _pair(name, bias=bias)
    x = torch.randn(4, 5, dtype=torch.double, requires_grad=True)
    state = _state(name, 4, 7)
    out_mine, out_ref = mine(x, state), ref(x, state)
    torch.testing.assert_close(_flat(out_mine), _flat(out_ref), rtol=1e-12, atol=1e-12)

    weights = torch.randn_like(_flat(out_ref))  # a random linear loss reaches every output element
    inputs = [x, *(state if isinstance(state, tuple) else (state,))]
    g_mine = torch.autograd.grad((_flat(out_mine) * weights).sum(), inputs + list(mine.parameters()))
    g_ref = torch.autograd.grad((_flat(out_ref) * weights).sum(), inputs + list(ref.parameters()))
    assert len(g_mine) == len(g_ref) == len(inputs) + (4 if bias else 2)
    for a, b in zip(g_mine, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_default_state_and_unbatched_input(name):
    mine, ref = _pair(name)
    x = torch.randn(3, 5, dtype=torch.double)
    torch.testing.assert_close(_flat(mine(x)), _flat(ref(x)))
    one = torch.randn(5, dtype=torch.double)  # (I,) without a batch axis, as torch allows
    out_mine, out_ref = mine(one), ref(one)
    torch.testing.assert_close(_flat(out_mine), _flat(out_ref))
    assert (out_mine[0] if isinstance(out_mine, tuple) else out_mine).shape == (7,)


def test_relu_rnn_cell_matches_torch():
    mine, ref = _pair("rnn", nonlinearity="relu")
    x, h = torch.randn(4, 5, dtype=torch.double), torch.randn(4, 7, dtype=torch.double)
    torch.testing.assert_close(mine(x, h), ref(x, h))


@pytest.mark.parametrize("name", list(CELLS))
def test_unroll_matches_torch_layer_and_its_bptt_gradients(name):
    torch.manual_seed(1)
    layer = TORCH_LAYERS[name](5, 7, batch_first=True).double()
    cell = get_cell(name)(5, 7).double()
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = torch.randn(3, 11, 5, dtype=torch.double, requires_grad=True)
    out_mine, state_mine = unroll(cell, x)
    out_ref, state_ref = layer(x)
    torch.testing.assert_close(out_mine, out_ref)
    final_ref = tuple(s[0] for s in state_ref) if name == "lstm" else state_ref[0]
    torch.testing.assert_close(_flat(state_mine), _flat(final_ref))

    target = torch.randn(3, 7, dtype=torch.double)
    loss_mine = (out_mine[:, -1] - target).pow(2).sum() + out_mine.sum()
    loss_ref = (out_ref[:, -1] - target).pow(2).sum() + out_ref.sum()
    g_mine = torch.autograd.grad(loss_mine, [x, *cell.parameters()])
    g_ref = torch.autograd.grad(loss_ref, [x, *layer.parameters()])
    for a, b in zip(g_mine, g_ref):
        torch.testing.assert_close(a, b)


def test_hand_written_bptt_matches_autograd():
    torch.manual_seed(2)
    cell = RNNCell(4, 6).double()
    x = torch.randn(3, 9, 4, dtype=torch.double)
    h0 = torch.randn(3, 6, dtype=torch.double, requires_grad=True)
    grad_hidden = torch.randn(3, 9, 6, dtype=torch.double)
    grad_hidden[:, :5] = 0  # the loss looks only at the last four steps

    hs, h = [], h0
    for t in range(9):
        h = cell(x[:, t], h)
        h.retain_grad()
        hs.append(h)
    (torch.stack(hs, 1) * grad_hidden).sum().backward()

    mine = tanh_rnn_bptt(cell, x, grad_hidden, h0=h0.detach())
    torch.testing.assert_close(mine["hidden"], torch.stack(hs, 1).detach())
    torch.testing.assert_close(mine["dh"], torch.stack([h.grad for h in hs], 1))
    torch.testing.assert_close(mine["dh0"], h0.grad)
    for name, p in cell.named_parameters():
        torch.testing.assert_close(mine[name], p.grad, msg=name)


def test_hand_written_bptt_shows_vanishing_gradient():
    torch.manual_seed(3)
    cell = RNNCell(1, 16).double()
    with torch.no_grad():
        cell.weight_hh.mul_(0.5)  # spectral radius well below 1: every step back multiplies by a contraction
    x = torch.randn(1, 40, 1, dtype=torch.double)
    grad = torch.zeros(1, 40, 16, dtype=torch.double)
    grad[:, -1] = 1.0
    dh = tanh_rnn_bptt(cell, x, grad)["dh"][0].norm(dim=1)
    assert dh[0] < 1e-6 * dh[-1]
    assert torch.all(dh[1:] >= dh[:-1])  # monotone decay backwards in time


def test_bad_arguments_name_what_is_valid():
    with pytest.raises(ValueError, match="valid cells: rnn, lstm, gru"):
        get_cell("transformer")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        LSTMCell(3, 0)
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 3\)"):
        GRUCell(3, 4)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="tanh cell"):
        tanh_rnn_bptt(RNNCell(1, 2, nonlinearity="relu"), torch.randn(1, 3, 1), torch.zeros(1, 3, 2))
