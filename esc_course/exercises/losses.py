"""Week 2 exercises: losses written out (cross-entropy, Huber) and the central-difference gradient."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from esc_course.exercises._cases import randn
from esc_course.exercises.core import Case, Exercise, WrongAnswer


def cross_entropy(logits, target):
    """logits (N, C), target (N,) class indices. Return the mean cross-entropy, a 0-d tensor (as
    torch.nn.functional.cross_entropy), stable for large logits."""
    # BEGIN SOLUTION
    shifted = logits - logits.max(dim=1, keepdim=True).values  # log-sum-exp trick: exp never overflows
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    return -log_probs[torch.arange(len(target)), target].mean()
    # END SOLUTION


def _ce_cases() -> list[Case]:
    def case(name, logits, target, hint=""):
        return Case(name, (logits, target), F.cross_entropy(logits, target), hint)
    return [
        case("fixed 3x4", torch.tensor([[2.0, 1.0, 0.1, -1.0], [0.5, 2.5, 0.3, 0.0], [-1.0, 0.0, 1.0, 3.0]]),
             torch.tensor([0, 1, 3]), "배치(batch)의 평균(mean)입니다, 합(sum)이 아닙니다; -log softmax(logits)[target]."),
        case("batch 1", randn(1, 5, seed=1), torch.tensor([2])),
        case("odd sizes 7x3", randn(7, 3, seed=2), torch.tensor([0, 2, 1, 1, 0, 2, 2])),
        case("float64", randn(4, 6, seed=3, dtype=torch.float64), torch.tensor([5, 0, 3, 1])),
        case("large logits (1000): numerical stability", torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0]]),
             torch.tensor([0, 2]), "exp(1000) 은 inf 입니다: 각 행(row)의 최댓값을 빼고 계산하세요 (log-sum-exp trick)."),
        case("all-zero logits: log C", torch.zeros(2, 4), torch.tensor([1, 3])),
    ]


def huber_loss(pred, target, delta):
    """The mean Huber loss (as torch.nn.functional.huber_loss): 0.5 e^2 where |e| <= delta, else
    delta (|e| - 0.5 delta), with e = pred - target."""
    # BEGIN SOLUTION
    err = (pred - target).abs()
    quadratic = 0.5 * err**2
    linear = delta * (err - 0.5 * delta)
    return torch.where(err <= delta, quadratic, linear).mean()
    # END SOLUTION


def _huber_cases() -> list[Case]:
    def case(name, pred, target, delta, hint=""):
        return Case(name, (pred, target, delta), F.huber_loss(pred, target, delta=delta), hint)
    p, t = torch.tensor([0.0, 0.5, 2.0, -3.0]), torch.tensor([0.0, 0.0, 0.0, 0.0])
    return [
        case("fixed, delta = 1", p, t, 1.0, "|e| <= delta 이면 0.5 e^2, 아니면 delta (|e| - 0.5 delta) (Huber)."),
        case("delta = 2: not smooth L1", p, t, 2.0, "Huber 는 delta 로 나누지 않습니다 (smooth L1 = Huber / delta)."),
        case("odd shape (3, 5), delta = 0.5", randn(3, 5, seed=1), randn(3, 5, seed=2), 0.5),
        case("float64, delta = 1.5", randn(6, seed=3, dtype=torch.float64) * 3,
             randn(6, seed=4, dtype=torch.float64), 1.5),
        case("zeros: loss 0", torch.zeros(4), torch.zeros(4), 1.0),
    ]


def numerical_gradient(f, x, eps):
    """d f(x) / d x by central differences, for a function f of a float64 tensor x returning a 0-d tensor.
    Return a tensor shaped like x; leave x unchanged."""
    # BEGIN SOLUTION
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        plus = float(f(x))
        flat[i] = old - eps
        minus = float(f(x))
        flat[i] = old  # put the entry back: x must come out unchanged
        gflat[i] = (plus - minus) / (2 * eps)
    return grad
    # END SOLUTION


def _numgrad_runner(fn, f, x, eps):
    before = x.clone()
    got = fn(f, x, eps)
    if not torch.equal(before, x):
        raise WrongAnswer("x was changed by the call; put every entry back after f(x + eps) and f(x - eps)")
    return got


def _numgrad_cases() -> list[Case]:
    def cube(x):
        return (x**3).sum()

    a = randn(4, 4, seed=7, dtype=torch.float64)

    def quadratic(x):
        return x @ a @ x

    def expected(f, x):
        x = x.clone().requires_grad_(True)
        return torch.autograd.grad(f(x), x)[0]

    central = ("중심 차분(central difference): (f(x + eps) - f(x - eps)) / (2 eps); 전진 차분(forward "
               "difference)은 오차가 eps 에 비례해 너무 큽니다.")
    x1 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    return [
        Case("sum(x^3) at [1, -2, 0.5], eps = 1e-3", (cube, x1, 1e-3), expected(cube, x1), central,
             rtol=1e-5, atol=1e-5, runner=_numgrad_runner),
        Case("x @ A @ x, x (4,), eps = 1e-5", (quadratic, randn(4, seed=8, dtype=torch.float64), 1e-5),
             expected(quadratic, randn(4, seed=8, dtype=torch.float64)), central, rtol=1e-5, atol=1e-6,
             runner=_numgrad_runner),
        Case("2-D x (2, 3), eps = 1e-4", (cube, randn(2, 3, seed=9, dtype=torch.float64), 1e-4),
             expected(cube, randn(2, 3, seed=9, dtype=torch.float64)), "x 와 같은 모양(shape)으로 돌려주세요.",
             rtol=1e-5, atol=1e-6, runner=_numgrad_runner),
        Case("x = zeros (5,)", (cube, torch.zeros(5, dtype=torch.float64), 1e-4),
             torch.zeros(5, dtype=torch.float64), central, rtol=1e-5, atol=1e-6, runner=_numgrad_runner),
    ]


EXERCISES = [
    Exercise("week02.cross_entropy", cross_entropy,
             "교차 엔트로피(cross-entropy) 손실을 직접 쓰세요: 배치 평균(batch mean), 큰 logit 에서도 안정적으로.",
             "Write the cross-entropy loss: the batch mean, numerically stable for large logits.",
             _ce_cases, "-log softmax(logits)[i, target[i]] 의 평균; 행(row)마다 max 를 빼면 안정적입니다."),
    Exercise("week02.huber_loss", huber_loss,
             "Huber 손실: 작은 오차에는 제곱(MSE 처럼), 큰 오차에는 선형(MAE 처럼); 평균을 돌려주세요.",
             "The Huber loss: quadratic for small errors, linear for large ones; return the mean.",
             _huber_cases, "torch.where(|e| <= delta, 0.5 e^2, delta (|e| - 0.5 delta)).mean()"),
    Exercise("week02.numerical_gradient", numerical_gradient,
             "중심 차분(central difference)으로 기울기(gradient)를 재세요: 원소마다 x 를 +eps, -eps 만큼 움직입니다.",
             "Measure a gradient by central differences: move each entry of x by +eps and -eps.",
             _numgrad_cases, "grad[i] = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps); 끝나면 x[i] 를 되돌리세요."),
]
