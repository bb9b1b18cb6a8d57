"""Week 4 exercises: batch normalization (forward and backward) and layer normalization."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from esc_course.exercises._cases import randn
from esc_course.exercises.core import Case, Exercise
from esc_course.scratch.gradcheck import numerical_grad

BIASED = ("배치 정규화(batch norm)는 학습 때 편향 분산(biased variance)을 씁니다: N 으로 나눕니다 "
          "(unbiased=False), N - 1 이 아닙니다.")


def batch_norm_train(x, gamma, beta, eps):
    """Batch normalization in training mode: x (N, D) normalized per feature (column) with the batch mean and
    the biased variance, then gamma * x_hat + beta (gamma, beta (D,))."""
    # BEGIN SOLUTION
    mean = x.mean(dim=0)
    var = ((x - mean) ** 2).mean(dim=0)  # biased: divide by N
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return gamma * x_hat + beta
    # END SOLUTION


def _bn(x, gamma, beta, eps):
    return F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)


def _bn_cases() -> list[Case]:
    def case(name, n, d, seed, eps=1e-5, dtype=torch.float32, hint=""):
        args = (randn(n, d, seed=seed, dtype=dtype) * 2 + 1, randn(d, seed=seed + 1, dtype=dtype),
                randn(d, seed=seed + 2, dtype=dtype), eps)
        return Case(name, args, _bn(*args), hint, rtol=1e-4, atol=1e-5)
    fixed = (torch.tensor([[1.0, 2.0, 0.0], [3.0, 6.0, 0.0], [5.0, 1.0, 0.0], [7.0, 3.0, 0.0]]),
             torch.tensor([1.0, 0.5, 2.0]), torch.tensor([0.0, 1.0, -1.0]), 1e-5)
    return [
        case("batch 2 (N - 1 vs N matters most)", 2, 3, 1, hint=BIASED),
        case("5x3: per feature, not per sample", 5, 3, 4,
             hint="특징(feature)마다, 즉 열(column)마다 평균과 분산을 냅니다: dim=0 (the batch axis)."),
        Case("4x3 with a constant feature (variance 0)", fixed, _bn(*fixed),
             "분산이 0 이면 eps 가 0 나누기를 막습니다: sqrt(var + eps), eps 는 루트 안에.", rtol=1e-4, atol=1e-5),
        case("eps = 0.1: inside the square root", 6, 2, 7, eps=0.1, hint="x_hat = (x - mean) / sqrt(var + eps)."),
        case("odd sizes 7x5", 7, 5, 10),
        case("float64", 8, 4, 13, dtype=torch.float64),
    ]


def layer_norm(x, gamma, beta, eps):
    """Layer normalization over the last axis: x (..., D) normalized per sample with its own mean and biased
    variance, then gamma * x_hat + beta (gamma, beta (D,)), as torch.nn.functional.layer_norm."""
    # BEGIN SOLUTION
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta
    # END SOLUTION


def _ln_cases() -> list[Case]:
    def case(name, shape, seed, eps=1e-5, dtype=torch.float32, hint=""):
        d = shape[-1]
        args = (randn(*shape, seed=seed, dtype=dtype) * 3, randn(d, seed=seed + 1, dtype=dtype),
                randn(d, seed=seed + 2, dtype=dtype), eps)
        return Case(name, args, F.layer_norm(args[0], (d,), args[1], args[2], eps), hint, rtol=1e-4, atol=1e-5)
    return [
        case("4x6: per sample, not per feature", (4, 6), 1,
             hint="층 정규화(layer norm)는 샘플마다 마지막 축(last axis)으로 평균을 냅니다: dim=-1, keepdim=True."),
        case("batch 1", (1, 5), 4),
        case("3-D input (2, 3, 4)", (2, 3, 4), 7, hint="x 가 (N, T, D) 여도 마지막 축 D 로 정규화합니다."),
        case("two features (N - 1 vs N)", (3, 2), 10, hint="편향 분산(biased variance): D 로 나눕니다."),
        case("float64, eps = 0.01", (5, 3), 13, eps=0.01, dtype=torch.float64),
    ]


def batch_norm_backward(x, gamma, grad_out, eps):
    """The backward pass of batch_norm_train (beta's value does not matter): x (N, D), gamma (D,), grad_out =
    dL/dy (N, D). Return (grad_x, grad_gamma, grad_beta); the batch mean and variance depend on x too."""
    # BEGIN SOLUTION
    n = x.shape[0]
    mean = x.mean(dim=0)
    var = ((x - mean) ** 2).mean(dim=0)
    inv_std = 1.0 / torch.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    grad_beta = grad_out.sum(dim=0)
    grad_gamma = (grad_out * x_hat).sum(dim=0)
    g = grad_out * gamma  # dL/dx_hat
    grad_x = inv_std / n * (n * g - g.sum(dim=0) - x_hat * (g * x_hat).sum(dim=0))
    return grad_x, grad_gamma, grad_beta
    # END SOLUTION


def _bn_backward_expected(x, gamma, grad_out, eps):
    xs = [t.detach().clone().requires_grad_(True) for t in (x, gamma, torch.zeros_like(gamma))]
    _bn(xs[0], xs[1], xs[2], eps).backward(grad_out)
    return tuple(t.grad for t in xs)


def _bn_backward_cases() -> list[Case]:
    def args(n, d, seed, dtype=torch.float32):
        return (randn(n, d, seed=seed, dtype=dtype) * 2, randn(d, seed=seed + 1, dtype=dtype),
                randn(n, d, seed=seed + 2, dtype=dtype), 1e-5)
    cases = []
    for name, a in [("4x3", args(4, 3, 1)), ("batch 2", args(2, 3, 4)), ("odd sizes 7x5", args(7, 5, 7))]:
        cases.append(Case(name, a, _bn_backward_expected(*a), rtol=1e-3, atol=1e-4))
    zero = args(5, 2, 10)
    zero = (zero[0], zero[1], torch.zeros(5, 2), zero[3])
    cases.append(Case("zero upstream gradient", zero, _bn_backward_expected(*zero), rtol=1e-3, atol=1e-5))
    x, gamma, g, eps = args(6, 3, 13, torch.float64)
    beta = torch.zeros(3, dtype=torch.float64)
    numeric = numerical_grad(lambda x_, gm_, b_: _bn(x_, gm_, b_, eps) * g, [x, gamma, beta])
    cases.append(Case("float64 central-difference check (6x3)", (x, gamma, g, eps), tuple(numeric),
                      "중심 차분(central difference)으로 잰 기울기와 다릅니다; 평균과 분산도 x 의 함수입니다.",
                      rtol=1e-5, atol=1e-6))
    return cases


EXERCISES = [
    Exercise("week04.batch_norm_train", batch_norm_train,
             "학습 모드(training mode)의 배치 정규화(batch normalization): 특징(feature)마다 배치 평균과 편향 분산"
             "(biased variance)으로 정규화하고 gamma, beta 를 적용하세요.",
             "Batch normalization in training mode: normalize each feature with the batch mean and the biased "
             "variance, then scale by gamma and shift by beta.",
             _bn_cases, "mean, var 는 dim=0 으로; var 는 N 으로 나눔; (x - mean) / sqrt(var + eps)."),
    Exercise("week04.layer_norm", layer_norm,
             "층 정규화(layer normalization): 샘플마다 마지막 축(last axis)으로 정규화하고 gamma, beta 를 적용하세요.",
             "Layer normalization: normalize each sample over its last axis, then apply gamma and beta.",
             _ln_cases, "mean, var 는 dim=-1, keepdim=True 로 (broadcasting)."),
    Exercise("week04.batch_norm_backward", batch_norm_backward,
             "배치 정규화의 역전파(backward pass): dL/dx, dL/dgamma, dL/dbeta. 배치 평균과 분산도 x 에 의존합니다.",
             "The backward pass of batch normalization: dL/dx, dL/dgamma, dL/dbeta (the batch statistics depend "
             "on x too).",
             _bn_backward_cases, "x_hat 에 대한 기울기 g = grad_out * gamma 에서: dx = (N g - sum g - x_hat sum(g "
             "x_hat)) / (N std).", outputs=("grad_x", "grad_gamma", "grad_beta"),
             output_hints={"grad_x": "평균과 분산을 상수로 보면 안 됩니다: dx = (N g - sum g - x_hat sum(g x_hat)) "
                                     "/ (N std), g = grad_out * gamma.",
                           "grad_beta": "grad_beta 는 배치에 대한 합(sum)입니다: grad_out.sum(0).",
                           "grad_gamma": "grad_gamma = (grad_out * x_hat).sum(0)."}),
]
