"""Week 3 exercises: the convolution PyTorch computes (a cross-correlation), max pooling, the output size."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from esc_course.exercises._cases import randn
from esc_course.exercises.core import Case, Exercise
from esc_course.scratch.conv import output_size


def conv2d(x, w, b, stride, padding):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None; zero padding on every side. Return (N, F, H', W'):
    the cross-correlation torch.nn.functional.conv2d computes (the kernel is not flipped)."""
    # BEGIN SOLUTION
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    x = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = x.new_zeros(n, f, oh, ow)
    for i in range(kh):  # one kernel position at a time: a (N, C, oh, ow) slice times w[:, :, i, j]
        for j in range(kw):
            patch = x[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            out += torch.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    if b is not None:
        out += b.view(1, f, 1, 1)
    return out
    # END SOLUTION


def _conv_cases() -> list[Case]:
    def case(name, x, w, b, stride, padding, hint=""):
        return Case(name, (x, w, b, stride, padding), F.conv2d(x, w, b, stride=stride, padding=padding), hint,
                    rtol=1e-4, atol=1e-5)
    flip = ("PyTorch 의 conv2d 는 교차 상관(cross-correlation)입니다: 커널을 뒤집지 마세요 (no kernel flip); "
            "out[i, j] = sum x[i + u, j + v] w[u, v].")
    x0 = torch.arange(16.0).view(1, 1, 4, 4)
    asym = torch.tensor([[[[1.0, 2.0], [0.0, -1.0]]]])
    return [
        case("4x4 input, asymmetric 2x2 kernel (no flip)", x0, asym, None, 1, 0, flip),
        case("stride 2", x0, asym, torch.tensor([0.5]), 2, 0,
             "stride s: 출력 위치 (i, j) 는 입력 (s i, s j) 에서 시작합니다; H' = (H + 2p - kh) // s + 1."),
        case("padding 1", x0, asym, None, 1, 1, "padding p: 입력 둘레에 0 을 p 줄씩 붙입니다 (zero padding)."),
        case("batch 1, 3 channels, bias", randn(1, 3, 5, 5, seed=1), randn(2, 3, 3, 3, seed=2), randn(2, seed=3),
             1, 0, "채널(channel) 축도 더합니다: out[n, f] = sum over c, u, v; 그리고 b[f] 를 더합니다."),
        case("odd sizes 5x7, kernel 3x2, stride 2, padding 1", randn(2, 2, 5, 7, seed=4),
             randn(3, 2, 3, 2, seed=5), randn(3, seed=6), 2, 1),
        case("float64", randn(2, 1, 6, 6, seed=7, dtype=torch.float64), randn(1, 1, 3, 3, seed=8, dtype=torch.float64),
             None, 1, 1),
        case("zeros input with bias", torch.zeros(1, 2, 3, 3), randn(2, 2, 2, 2, seed=9), torch.tensor([1.0, -2.0]),
             1, 0),
    ]


def max_pool2d(x, kernel_size, stride):
    """x (N, C, H, W); the maximum over each kernel_size x kernel_size window, windows ``stride`` apart
    (stride None: kernel_size), as torch.nn.functional.max_pool2d (no padding, windows that do not fit dropped)."""
    # BEGIN SOLUTION
    stride = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    oh, ow = (h - kernel_size) // stride + 1, (w - kernel_size) // stride + 1
    out = torch.full((n, c, oh, ow), float("-inf"), dtype=x.dtype)
    for i in range(kernel_size):
        for j in range(kernel_size):
            window = x[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            out = torch.maximum(out, window)
    return out
    # END SOLUTION


def _pool_cases() -> list[Case]:
    def case(name, x, k, s, hint=""):
        return Case(name, (x, k, s), F.max_pool2d(x, k, s), hint)
    x0 = torch.arange(16.0).view(1, 1, 4, 4)
    return [
        case("4x4, kernel 2", x0, 2, None, "stride 가 None 이면 kernel_size 와 같습니다; 창(window)마다 최댓값(max)."),
        case("all-negative input", -1 - torch.arange(16.0).view(1, 1, 4, 4), 2, 2,
             "최댓값을 0 으로 시작하면 음수 입력에서 틀립니다: -inf 나 첫 원소로 시작하세요."),
        case("odd size 5x5, kernel 2 (last row dropped)", randn(2, 3, 5, 5, seed=1), 2, None,
             "들어맞지 않는 마지막 창은 버립니다: H' = (H - k) // s + 1 (floor)."),
        case("overlapping windows: kernel 3, stride 1", randn(1, 2, 5, 6, seed=2), 3, 1),
        case("float64, batch 1", randn(1, 1, 4, 6, seed=3, dtype=torch.float64), 2, 2),
    ]


def conv_output_size(n, kernel, stride, padding):
    """The output length of a convolution along one axis of length n: an int."""
    # BEGIN SOLUTION
    return (n + 2 * padding - kernel) // stride + 1
    # END SOLUTION


def _size_cases() -> list[Case]:
    rows = [("n=32, kernel 5", (32, 5, 1, 0), ""), ("padding 2 keeps 32", (32, 5, 1, 2),
            "padding 은 양쪽에 붙습니다: n + 2p."), ("stride 2, even", (32, 3, 2, 1), ""),
            ("stride 2, odd: floor", (7, 3, 2, 0), "나누어떨어지지 않으면 내림(floor)합니다: //, 결과는 int."),
            ("kernel = n: one output", (5, 5, 1, 0), ""), ("n = 1 with padding 1", (1, 3, 1, 1), "")]
    return [Case(name, args, output_size(args[0], args[1], args[2], args[3]), hint) for name, args, hint in rows]


EXERCISES = [
    Exercise("week03.conv2d", conv2d,
             "2차원 합성곱(convolution)을 직접 쓰세요: stride 와 zero padding 이 있는, PyTorch 가 계산하는 교차 상관"
             "(cross-correlation).",
             "Write the 2-D convolution with stride and zero padding: the cross-correlation PyTorch computes.",
             _conv_cases, "커널을 뒤집지 않습니다; 출력 크기 (H + 2p - kh) // s + 1; 채널 축을 합하고 bias 를 더하세요."),
    Exercise("week03.max_pool2d", max_pool2d,
             "최대 풀링(max pooling): kernel_size 창(window)마다 최댓값을, stride 간격으로.",
             "Max pooling: the maximum of each kernel_size window, windows stride apart.",
             _pool_cases, "창의 위치마다 torch.maximum 으로 최댓값을 모으세요."),
    Exercise("week03.conv_output_size", conv_output_size,
             "합성곱 출력의 길이(output size)를 구하세요: 입력 길이 n, kernel, stride, padding.",
             "The output length of a convolution from n, kernel, stride and padding.",
             _size_cases, "(n + 2 padding - kernel) // stride + 1"),
]
