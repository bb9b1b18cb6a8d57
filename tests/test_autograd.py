import math
import random

import pytest
import torch

from esc_course.scratch.autograd import Value, ValueMLP, train_value_mlp


def test_slides_example():
    x, y, z = Value(-2.0), Value(5.0), Value(-4.0)
    f = (x + y) * z
    f.backward()
    assert f.data == -12.0
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)


UNARY = ["tanh", "relu", "sigmoid", "exp"]
BINARY = ["+", "-", "*", "/", "max"]


def random_expression(rng: random.Random, leaves, depth):
    """Build the same random expression over Values and over torch scalars."""
    if depth == 0:
        i = rng.randrange(len(leaves))
        return leaves[i]
    kind = rng.random()
    if kind < 0.3:
        op = rng.choice(UNARY)
        v, t = random_expression(rng, leaves, depth - 1)
        if op == "exp":  # keep values bounded
            return (v * 0.3).exp(), torch.exp(t * 0.3)
        return getattr(v, op)(), getattr(torch, op)(t)
    if kind < 0.4:
        v, t = random_expression(rng, leaves, depth - 1)
        k = rng.choice([2, 3, -1, 0.5])
        if k in (-1, 0.5):  # needs a positive base
            return (v * v + 1.0) ** k, (t * t + 1.0) ** k
        return v**k, t**k
    op = rng.choice(BINARY)
    (va, ta), (vb, tb) = random_expression(rng, leaves, depth - 1), random_expression(rng, leaves, depth - 1)
    if op == "/":
        return va / (vb * vb + 1.0), ta / (tb * tb + 1.0)
    if op == "max":
        return va.max(vb), torch.maximum(ta, tb)
    return {"+": (va + vb, ta + tb), "-": (va - vb, ta - tb), "*": (va * vb, ta * tb)}[op]


@pytest.mark.parametrize("seed", range(30))
def test_random_expressions_match_torch(seed):
    rng = random.Random(seed)
    raw = [rng.uniform(-2, 2) for _ in range(4)]
    values = [Value(r) for r in raw]
    tensors = [torch.tensor(r, dtype=torch.float64, requires_grad=True) for r in raw]
    v_out, t_out = random_expression(rng, list(zip(values, tensors)), depth=4)
    if not isinstance(v_out, Value):  # a leaf alone: wrap it
        v_out, t_out = v_out * 1.0, t_out * 1.0
    v_out.backward()
    t_out.backward()
    assert v_out.data == pytest.approx(t_out.item(), rel=1e-9, abs=1e-12)
    for v, t in zip(values, tensors):
        expected = 0.0 if t.grad is None else t.grad.item()
        assert v.grad == pytest.approx(expected, rel=1e-7, abs=1e-10)


def test_reused_node_accumulates_gradient():
    a = Value(3.0)
    b = a * a + a  # db/da = 2a + 1 = 7
    b.backward()
    assert a.grad == 7.0
    b.backward()  # a second backward starts from zero, not from the old gradients
    assert a.grad == 7.0


def test_reverse_operators_and_log():
    a = Value(2.0)
    f = 1 - a + 3 / a + 2 * a.log()
    f.backward()
    assert f.data == pytest.approx(1 - 2 + 1.5 + 2 * math.log(2))
    assert a.grad == pytest.approx(-1 - 3 / 4 + 1.0)
    with pytest.raises(ValueError):
        Value(-1.0).log()


def test_deep_chain_has_no_recursion_limit():
    x = Value(1.0)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.backward()
    assert x.grad == 1.0


def test_value_mlp_learns_xor():
    xs = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    ys = [-1.0, 1.0, 1.0, -1.0]
    model = ValueMLP(2, [4, 1], out_activation="tanh", seed=0)
    losses = train_value_mlp(model, xs, ys, steps=150, lr=0.2)
    assert losses[-1] < 0.1 * losses[0]
    assert all((model(x).data > 0) == (y > 0) for x, y in zip(xs, ys))


@pytest.mark.parametrize(("a", "b"), [(3.0, -4.0), (-1.0, 2.5), (1.5, 1.5), (0.0, 0.0)])
def test_max_gate_routes_the_gradient_as_torch_does(a, b):
    """max sends the upstream gradient to the larger input only; a tie splits it (torch.maximum's rule)."""
    va, vb = Value(a), Value(b)
    out = va.max(vb) * 2.0  # upstream gradient 2
    out.backward()
    ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a, b))
    (torch.maximum(ta, tb) * 2.0).backward()
    assert out.data == pytest.approx(2 * max(a, b))
    assert (va.grad, vb.grad) == (ta.grad.item(), tb.grad.item())
    assert Value(1.0).max(3).data == 3.0  # a plain number is wrapped
