"""Week 6 exercises: one step of Adam, SGD with momentum and RMSprop, as torch.optim takes it."""

from __future__ import annotations

import torch

from esc_course.exercises._cases import rand, randn
from esc_course.exercises.core import Case, Exercise


def _torch_step(opt_class, param, grad, state, **hparams):
    """(new param, state after one step) of a torch.optim optimizer started from ``state``."""
    p = param.detach().clone().requires_grad_(True)
    opt = opt_class([p], foreach=False, **hparams)
    opt.state[p].update({k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in state.items()})
    p.grad = grad.clone()
    opt.step()
    return p.detach(), opt.state[p]


def adam_step(param, grad, m, v, t, lr, beta1, beta2, eps):
    """One Adam step (as torch.optim.Adam): t counts steps from 1, m and v are the moving averages before it.
    Return (param, m, v) after the step, with bias correction."""
    # BEGIN SOLUTION
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**t)  # bias correction: m and v start at 0
    v_hat = v / (1 - beta2**t)
    param = param - lr * m_hat / (torch.sqrt(v_hat) + eps)
    return param, m, v
    # END SOLUTION


def _adam_case(name, param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, hint=""):
    state = {"step": torch.tensor(float(t - 1)), "exp_avg": m, "exp_avg_sq": v}
    p, s = _torch_step(torch.optim.Adam, param, grad, state, lr=lr, betas=(beta1, beta2), eps=eps)
    return Case(name, (param, grad, m, v, t, lr, beta1, beta2, eps), (p, s["exp_avg"], s["exp_avg_sq"]), hint,
                rtol=1e-5, atol=1e-7)


def _adam_cases() -> list[Case]:
    bias = ("편향 보정(bias correction): m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t); t 는 1 부터 셉니다. "
            "m, v 가 0 에서 시작하므로 t = 1 에서 보정하지 않으면 걸음이 훨씬 작습니다.")
    z = torch.zeros(3, 4)
    return [
        _adam_case("t = 1 from m = v = 0 (bias correction)", randn(3, 4, seed=1), randn(3, 4, seed=2), z, z, 1,
                   hint=bias),
        _adam_case("t = 10, lr 0.01", randn(5, seed=3), randn(5, seed=4), randn(5, seed=5) * 0.1,
                   rand(5, seed=6) * 0.01, 10, lr=0.01, hint=bias),
        _adam_case("eps = 0.1 outside the square root", randn(4, seed=7), randn(4, seed=8) * 0.01,
                   torch.zeros(4), torch.zeros(4), 3, eps=0.1,
                   hint="eps 는 제곱근 밖에 더합니다: sqrt(v_hat) + eps (sqrt(v_hat + eps) 가 아닙니다)."),
        _adam_case("zero gradient", randn(2, 3, seed=9), torch.zeros(2, 3), randn(2, 3, seed=10) * 0.1,
                   rand(2, 3, seed=11) * 0.1, 5, beta1=0.8, beta2=0.99),
        _adam_case("float64, odd shape (3, 5, 7)", randn(3, 5, 7, seed=12, dtype=torch.float64),
                   randn(3, 5, 7, seed=13, dtype=torch.float64), torch.zeros(3, 5, 7, dtype=torch.float64),
                   torch.zeros(3, 5, 7, dtype=torch.float64), 1, lr=0.1),
    ]


def sgd_momentum_step(param, grad, buf, lr, momentum):
    """One step of torch.optim.SGD(lr=lr, momentum=momentum): buf is the momentum buffer before the step.
    Return (param, buf) after it."""
    # BEGIN SOLUTION
    buf = momentum * buf + grad
    param = param - lr * buf
    return param, buf
    # END SOLUTION


def _sgd_case(name, param, grad, buf, lr, momentum, hint=""):
    p, s = _torch_step(torch.optim.SGD, param, grad, {"momentum_buffer": buf}, lr=lr, momentum=momentum)
    return Case(name, (param, grad, buf, lr, momentum), (p, s["momentum_buffer"]), hint)


def _sgd_cases() -> list[Case]:
    form = ("PyTorch 의 모멘텀(momentum): buf = momentum * buf + grad (1 - momentum 을 곱하지 않습니다), "
            "param = param - lr * buf (grad 가 아니라 buf 로).")
    return [
        _sgd_case("momentum 0.9, buffer nonzero", randn(3, 4, seed=1), randn(3, 4, seed=2), randn(3, 4, seed=3),
                  0.1, 0.9, form),
        _sgd_case("first step: buffer 0", randn(5, seed=4), randn(5, seed=5), torch.zeros(5), 0.5, 0.5),
        _sgd_case("zero gradient: the velocity carries on", randn(4, seed=6), torch.zeros(4), randn(4, seed=7),
                  0.1, 0.5, "기울기가 0 이어도 buf 가 param 을 계속 움직입니다 (velocity)."),
        _sgd_case("float64, odd shape (3, 5, 7)", randn(3, 5, 7, seed=8, dtype=torch.float64),
                  randn(3, 5, 7, seed=9, dtype=torch.float64), randn(3, 5, 7, seed=10, dtype=torch.float64),
                  0.01, 0.99),
    ]


def rmsprop_step(param, grad, square_avg, lr, alpha, eps):
    """One step of torch.optim.RMSprop(lr=lr, alpha=alpha, eps=eps): square_avg is the moving average of
    grad^2 before the step. Return (param, square_avg) after it."""
    # BEGIN SOLUTION
    square_avg = alpha * square_avg + (1 - alpha) * grad**2
    param = param - lr * grad / (torch.sqrt(square_avg) + eps)
    return param, square_avg
    # END SOLUTION


def _rms_case(name, param, grad, sq, lr, alpha, eps, hint=""):
    p, s = _torch_step(torch.optim.RMSprop, param, grad, {"step": torch.tensor(0.0), "square_avg": sq}, lr=lr,
                       alpha=alpha, eps=eps)
    return Case(name, (param, grad, sq, lr, alpha, eps), (p, s["square_avg"]), hint, rtol=1e-5, atol=1e-7)


def _rms_cases() -> list[Case]:
    return [
        _rms_case("alpha 0.99 from square_avg = 0", randn(3, 4, seed=1), randn(3, 4, seed=2), torch.zeros(3, 4),
                  0.01, 0.99, 1e-8, "square_avg = alpha * square_avg + (1 - alpha) * grad^2."),
        _rms_case("eps = 0.1 outside the square root", randn(5, seed=3), randn(5, seed=4) * 0.1,
                  rand(5, seed=5) * 0.01, 0.01, 0.9, 0.1, "eps 는 sqrt(square_avg) 밖에 더합니다 (as PyTorch)."),
        _rms_case("zero gradient", randn(4, seed=6), torch.zeros(4), rand(4, seed=7), 0.1, 0.9, 1e-8),
        _rms_case("float64, odd shape (3, 5, 7)", randn(3, 5, 7, seed=8, dtype=torch.float64),
                  randn(3, 5, 7, seed=9, dtype=torch.float64), rand(3, 5, 7, seed=10, dtype=torch.float64),
                  0.001, 0.5, 1e-6),
    ]


EXERCISES = [
    Exercise("week06.adam_step", adam_step,
             "Adam 한 걸음: 1차, 2차 모멘트(moment) m, v 를 갱신하고 편향 보정(bias correction) 후 param 을 움직이세요.",
             "One Adam step: update the moments m and v, correct their bias, and move param.",
             _adam_cases, "m, v 갱신 -> m_hat, v_hat (편향 보정) -> param - lr m_hat / (sqrt(v_hat) + eps).",
             outputs=("param", "m", "v"),
             output_hints={"m": "m = beta1 * m + (1 - beta1) * grad (보정 전의 m 을 돌려주세요).",
                           "v": "v = beta2 * v + (1 - beta2) * grad^2 (보정 전의 v 를 돌려주세요)."}),
    Exercise("week06.sgd_momentum_step", sgd_momentum_step,
             "모멘텀(momentum)이 있는 SGD 한 걸음 (torch.optim.SGD 의 식).",
             "One step of SGD with momentum, in torch.optim.SGD's form.",
             _sgd_cases, "buf = momentum * buf + grad; param = param - lr * buf", outputs=("param", "buf")),
    Exercise("week06.rmsprop_step", rmsprop_step,
             "RMSprop 한 걸음: 기울기 제곱의 이동 평균(moving average)으로 걸음을 나눕니다.",
             "One RMSprop step: divide the step by the root of a moving average of squared gradients.",
             _rms_cases, "square_avg 갱신 -> param - lr * grad / (sqrt(square_avg) + eps)",
             outputs=("param", "square_avg")),
]
