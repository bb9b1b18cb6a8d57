"""Week 5 exercises: inverted dropout, the L2 penalty, and SGD's weight decay."""

from __future__ import annotations

import torch

from esc_course import regularization
from esc_course.exercises._cases import rand, randn
from esc_course.exercises.core import Case, Exercise


def inverted_dropout(x, mask, p):
    """Dropout in training mode with a given keep ``mask`` (bool, x's shape, True = kept): zero the dropped
    values and scale the kept ones by 1 / (1 - p), so the expected value stays x. p = 1 drops everything."""
    # BEGIN SOLUTION
    if p == 1:
        return torch.zeros_like(x)
    return x * mask.to(x.dtype) / (1 - p)
    # END SOLUTION


def _dropout_expected(x, mask, p):
    return torch.zeros_like(x) if p == 1 else torch.where(mask, x / (1 - p), torch.zeros_like(x))


def _dropout_cases() -> list[Case]:
    def case(name, shape, p, seed, dtype=torch.float32, hint=""):
        x = randn(*shape, seed=seed, dtype=dtype)
        mask = rand(*shape, seed=seed + 1) >= p
        return Case(name, (x, mask, p), _dropout_expected(x, mask, p), hint)
    scale = ("역 드롭아웃(inverted dropout): 남은 값을 1 / (1 - p) 배 합니다 (keep probability 1 - p 로 나눔; "
             "p 로 나누지 않습니다). 그래야 기댓값(expected value)이 같습니다.")
    return [
        case("p = 0.5, 4x6", (4, 6), 0.5, 1, hint=scale),
        case("p = 0.2, odd shape (3, 5, 7)", (3, 5, 7), 0.2, 3, hint=scale),
        case("p = 0: identity", (2, 3), 0.0, 5, hint="p = 0 이면 아무것도 바꾸지 않습니다."),
        case("p = 1: everything dropped", (2, 3), 1.0, 7, hint="p = 1 이면 0 으로 나누지 말고 전부 0 을 돌려주세요."),
        case("float64, p = 0.3", (5, 4), 0.3, 9, dtype=torch.float64, hint="입력의 dtype 을 유지하세요: "
             "mask.to(x.dtype)."),
    ]


def l2_penalty(params):
    """The L2 penalty of a list of tensors: the sum of every entry squared, a 0-d tensor (0 for no tensors)."""
    # BEGIN SOLUTION
    total = torch.zeros(())
    for p in params:
        total = total + (p**2).sum()
    return total
    # END SOLUTION


def _l2_cases() -> list[Case]:
    def case(name, params, hint=""):
        return Case(name, (params,), regularization.l2_penalty(params), hint)
    return [
        case("two tensors (3, 4) and (4,)", [randn(3, 4, seed=1), randn(4, seed=2)],
             "모든 텐서(tensor)의 모든 원소 제곱을 더합니다 (sum of W^2 over every parameter): 평균(mean)도, "
             "노름(norm, 제곱근)도 아닙니다."),
        case("fixed: [1, 2] and [[3]] -> 14", [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])],
             "1 + 4 + 9 = 14: 제곱(square)의 합."),
        case("one tensor, odd shape (5, 3)", [randn(5, 3, seed=3)]),
        case("zeros", [torch.zeros(2, 2), torch.zeros(3)]),
        case("float64", [randn(4, 2, seed=4, dtype=torch.float64), randn(3, seed=5, dtype=torch.float64)],
             "float64 파라미터면 결과도 float64 입니다 (keep the dtype)."),
    ]


def weight_decay_step(param, grad, lr, weight_decay):
    """One step of torch.optim.SGD(lr=lr, weight_decay=weight_decay) without momentum: the decay is added to
    the gradient (L2 in the loss). Return the new param (a new tensor)."""
    # BEGIN SOLUTION
    return param - lr * (grad + weight_decay * param)
    # END SOLUTION


def _wd_expected(param, grad, lr, weight_decay):
    p = param.detach().clone().requires_grad_(True)
    opt = torch.optim.SGD([p], lr=lr, weight_decay=weight_decay, foreach=False)
    p.grad = grad.clone()
    opt.step()
    return p.detach()


def _wd_cases() -> list[Case]:
    def case(name, shape, lr, wd, seed, dtype=torch.float32, zero_grad=False, hint=""):
        param = randn(*shape, seed=seed, dtype=dtype)
        grad = torch.zeros(shape, dtype=dtype) if zero_grad else randn(*shape, seed=seed + 1, dtype=dtype)
        return Case(name, (param, grad, lr, wd), _wd_expected(param, grad, lr, wd), hint)
    coupled = ("SGD 의 weight_decay 는 기울기에 더해집니다: grad + weight_decay * param, 그다음 lr 을 곱합니다 "
               "(AdamW 처럼 decoupled 가 아닙니다).")
    return [
        case("lr 0.1, weight_decay 0.01", (3, 4), 0.1, 0.01, 1, hint=coupled),
        case("zero gradient: decay alone", (5,), 0.5, 0.1, 3, zero_grad=True,
             hint="기울기가 0 이면 param 은 (1 - lr * weight_decay) 배가 됩니다 (shrinks towards 0)."),
        case("weight_decay 0: plain SGD", (2, 3), 0.1, 0.0, 5),
        case("float64, odd shape (3, 5, 7)", (3, 5, 7), 0.05, 0.2, 7, dtype=torch.float64),
    ]


EXERCISES = [
    Exercise("week05.inverted_dropout", inverted_dropout,
             "역 드롭아웃(inverted dropout)을 주어진 mask 로: 떨어진 값은 0, 남은 값은 1 / (1 - p) 배.",
             "Inverted dropout with a given mask: dropped values become 0, kept ones are scaled by 1 / (1 - p).",
             _dropout_cases, "x * mask / (1 - p); p = 1 은 따로."),
    Exercise("week05.l2_penalty", l2_penalty,
             "L2 규제항(penalty): 모든 파라미터(parameter)의 모든 원소 제곱의 합.",
             "The L2 penalty: the sum of the squares of every entry of every parameter.",
             _l2_cases, "for p in params: total = total + (p ** 2).sum()"),
    Exercise("week05.weight_decay_step", weight_decay_step,
             "가중치 감쇠(weight decay)가 있는 SGD 한 걸음 (torch.optim.SGD 의 weight_decay, momentum 없이).",
             "One SGD step with weight decay, as torch.optim.SGD's weight_decay (no momentum).",
             _wd_cases, "param - lr * (grad + weight_decay * param)"),
]
