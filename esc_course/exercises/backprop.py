"""Week 1 exercises: backpropagation by hand (a linear layer's backward pass, the scalar engine's tanh, ReLU's)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from esc_course.exercises._cases import randn
from esc_course.exercises.core import Case, Exercise, WrongAnswer
from esc_course.scratch.autograd import Value
from esc_course.scratch.gradcheck import numerical_grad


def linear_backward(x, w, b, grad_out):
    """y = x @ w.T + b with x (N, in), w (out, in), b (out,); grad_out = dL/dy (N, out).
    Return (grad_x, grad_w, grad_b) = (dL/dx, dL/dw, dL/db), each the shape of its input."""
    # BEGIN SOLUTION
    grad_x = grad_out @ w
    grad_w = grad_out.T @ x
    grad_b = grad_out.sum(dim=0)
    return grad_x, grad_w, grad_b
    # END SOLUTION


def _linear_expected(x, w, b, grad_out):
    xs = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
    F.linear(*xs).backward(grad_out)
    return tuple(t.grad for t in xs)


def _linear_numeric(x, w, b, grad_out):
    return tuple(numerical_grad(lambda x_, w_, b_: F.linear(x_, w_, b_) * grad_out, [x, w, b]))


def _linear_cases() -> list[Case]:
    hint_sum = ("grad_b 는 배치(batch)의 모든 샘플에서 온 기울기의 합(sum)입니다 (dL/db = sum over N of grad_out; "
                "not the mean).")
    hint_shape = "grad_w 는 w 와 같은 (out, in) 모양(shape)입니다: grad_out.T @ x (the chain rule, transposed)."
    fixed = (torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]), torch.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]),
             torch.tensor([0.1, -0.1]), torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
    cases = [Case("fixed 2x3 -> 2", fixed, _linear_expected(*fixed), hint_sum)]
    for name, n, i, o, seed in [("batch 1", 1, 4, 3, 1), ("odd sizes 5x7 -> 3", 5, 7, 3, 2)]:
        args = (randn(n, i, seed=seed), randn(o, i, seed=seed + 10), randn(o, seed=seed + 20),
                randn(n, o, seed=seed + 30))
        cases.append(Case(name, args, _linear_expected(*args), hint_shape if n > 1 else ""))
    zeros = (randn(3, 4, seed=5), randn(2, 4, seed=6), randn(2, seed=7), torch.zeros(3, 2))
    cases.append(Case("zero upstream gradient", zeros, _linear_expected(*zeros)))
    d = tuple(randn(*s, seed=40 + k, dtype=torch.float64) for k, s in enumerate([(6, 5), (4, 5), (4,), (6, 4)]))
    cases.append(Case("float64 central-difference check (6x5 -> 4)", d, _linear_numeric(*d),
                      "중심 차분(central difference) (f(x+h) - f(x-h)) / 2h 로 잰 기울기와 다릅니다: 연쇄 법칙"
                      "(chain rule)을 다시 보세요.", rtol=1e-6, atol=1e-7))
    return cases


def value_tanh(value):
    """tanh of a scalar ``Value`` (esc_course.scratch.Value): return a new Value whose ``_backward`` adds
    d tanh / d value times the upstream gradient to ``value.grad``."""
    # BEGIN SOLUTION
    t = math.tanh(value.data)
    out = Value(t, (value,), "tanh")

    def _backward():
        value.grad += (1 - t * t) * out.grad

    out._backward = _backward
    return out
    # END SOLUTION


def _tanh_runner(build):
    def run(fn, x_data):
        x = Value(x_data)
        out = build(fn, x)
        if not isinstance(out, Value):
            raise WrongAnswer(f"expected a Value, got {type(out).__name__} ({out!r:.60})")
        out.backward()
        return float(out.data), float(x.grad)
    return run


def _own(fn, x):
    out = fn(x)
    if not isinstance(out, Value):
        raise WrongAnswer(f"expected a Value, got {type(out).__name__} ({out!r:.60})")
    return out


def _tanh_cases() -> list[Case]:
    grad = lambda a: 1 - math.tanh(a) ** 2  # noqa: E731
    local = "d tanh(x)/dx = 1 - tanh(x)^2 (출력 t 로 쓰면 1 - t^2), 그리고 upstream 기울기 out.grad 를 곱합니다."
    cases = [
        Case("tanh(0.5), backward from it", (0.5,), (math.tanh(0.5), grad(0.5)), local, runner=_tanh_runner(_own)),
        Case("x = 0 (zero)", (0.0,), (0.0, 1.0), local, runner=_tanh_runner(_own)),
        Case("x = -3", (-3.0,), (math.tanh(-3.0), grad(-3.0)), local, runner=_tanh_runner(_own)),
        Case("x = 30 (saturation, no overflow)", (30.0,), (1.0, 0.0), "math.tanh 를 쓰면 큰 x 에서도 overflow 가 "
             "없습니다 (exp(2x) overflows).", atol=1e-12, runner=_tanh_runner(_own)),
        Case("3 * tanh(x): the upstream gradient", (0.7,), (3 * math.tanh(0.7), 3 * grad(0.7)),
             "_backward 에서 local 기울기에 out.grad (upstream gradient) 를 곱해야 합니다 (chain rule).",
             runner=_tanh_runner(lambda fn, x: _own(fn, x) * 3.0)),
        Case("tanh(x) + tanh(x): gradients accumulate", (0.3,), (2 * math.tanh(0.3), 2 * grad(0.3)),
             "x 가 두 번 쓰이면 기울기가 더해집니다: value.grad += ... (accumulate with +=, not =).",
             runner=_tanh_runner(lambda fn, x: _own(fn, x) + _own(fn, x))),
    ]
    h = 1e-6
    numeric = (math.tanh(1.3 + h) - math.tanh(1.3 - h)) / (2 * h)
    cases.append(Case("x = 1.3, central-difference gradient", (1.3,), (math.tanh(1.3), numeric), local,
                      rtol=1e-6, atol=1e-8, runner=_tanh_runner(_own)))
    return cases


def relu_backward(x, grad_out):
    """y = relu(x); grad_out = dL/dy, the shape of x. Return dL/dx (relu'(0) = 0, as PyTorch)."""
    # BEGIN SOLUTION
    return grad_out * (x > 0).to(grad_out.dtype)
    # END SOLUTION


def _relu_expected(x, grad_out):
    x = x.detach().clone().requires_grad_(True)
    torch.relu(x).backward(grad_out)
    return x.grad


def _relu_cases() -> list[Case]:
    fixed = (torch.tensor([[-1.0, 2.0, 0.5], [3.0, -0.5, 1.0]]), torch.tensor([[1.0, 1.0, 2.0], [-1.0, 4.0, 0.5]]))
    zeros = (torch.tensor([0.0, 0.0, 1.0, -1.0]), torch.tensor([1.0, 2.0, 3.0, 4.0]))
    odd = (randn(3, 5, 2, seed=1), randn(3, 5, 2, seed=2))
    f64 = (randn(4, 3, seed=3, dtype=torch.float64), randn(4, 3, seed=4, dtype=torch.float64))
    return [Case("fixed 2x3", fixed, _relu_expected(*fixed),
                 "dL/dx = grad_out * 1[x > 0]: upstream 기울기(grad_out)를 곱하세요."),
            Case("x = 0 exactly (zeros): relu'(0) = 0", zeros, _relu_expected(*zeros),
                 "x = 0 에서 PyTorch 는 기울기 0 을 씁니다: x > 0 (not x >= 0)."),
            Case("odd shape (3, 5, 2)", odd, _relu_expected(*odd)),
            Case("float64", f64, _relu_expected(*f64), "입력의 dtype(float64)을 유지하세요 (keep the dtype).")]


EXERCISES = [
    Exercise("week01.linear_backward", linear_backward,
             "선형층(linear layer) y = x @ w.T + b 의 역전파(backward pass): grad_out = dL/dy 에서 dL/dx, dL/dw, "
             "dL/db 를 구하세요.",
             "The backward pass of y = x @ w.T + b: from grad_out = dL/dy return dL/dx, dL/dw, dL/db.",
             _linear_cases, "각 기울기는 그 입력과 같은 모양(shape)입니다; 연쇄 법칙(chain rule)을 행렬로 쓰세요.",
             outputs=("grad_x", "grad_w", "grad_b"),
             output_hints={"grad_b": "grad_b 는 배치(batch)의 모든 샘플에서 온 기울기의 합(sum)입니다 "
                                     "(dL/db = grad_out.sum(0), not the mean).",
                           "grad_w": "grad_w 는 w 와 같은 (out, in) 모양(shape)입니다: grad_out.T @ x.",
                           "grad_x": "grad_x 는 x 와 같은 (N, in) 모양입니다: grad_out @ w."}),
    Exercise("week01.value_tanh", value_tanh,
             "스칼라 자동미분 엔진(scalar autograd engine)의 tanh: 새 Value 를 만들고 그 _backward 가 입력의 grad 에 "
             "local 기울기 x upstream 기울기를 더하게 하세요.",
             "The scalar engine's tanh: return a new Value whose _backward adds local gradient times upstream "
             "gradient to the input's grad.",
             _tanh_cases, "out = Value(t, (value,), 'tanh'); out._backward 안에서 value.grad += (1 - t**2) * out.grad",
             outputs=("out.data", "x.grad"), imports="import math\n\nfrom esc_course.scratch import Value"),
    Exercise("week01.relu_backward", relu_backward,
             "ReLU 의 역전파: y = relu(x) 일 때 grad_out = dL/dy 에서 dL/dx 를 구하세요.",
             "ReLU's backward pass: from grad_out = dL/dy return dL/dx.",
             _relu_cases, "relu'(x) 는 x > 0 에서 1, 그 밖에서 0 입니다."),
]
