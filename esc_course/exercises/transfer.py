"""Week 8 exercises: the input normalization a pretrained backbone expects, top-k accuracy, and the
discriminative learning rates of fine-tuning (earlier stages learn more slowly)."""

from __future__ import annotations

import torch

from esc_course.exercises._cases import rand, randn
from esc_course.exercises.core import Case, Exercise

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def normalize_images(x, mean, std):
    """x (N, C, H, W), mean and std (C,) tensors: (x - mean) / std per channel, as torchvision's Normalize."""
    # BEGIN SOLUTION
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    # END SOLUTION


def _norm_cases() -> list[Case]:
    def case(name, x, mean, std, hint=""):
        expected = (x - mean[None, :, None, None]) / std[None, :, None, None]
        return Case(name, (x, mean, std), expected, hint)
    m, s = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    axis = ("mean, std 는 채널(channel) 축 C (dim 1) 에 맞춰야 합니다: mean.view(1, C, 1, 1); 그냥 빼면 마지막 축 "
            "W 에 broadcast 됩니다.")
    return [
        case("ImageNet statistics, 2x3x4x5", rand(2, 3, 4, 5, seed=1), m, s, axis),
        case("W = C = 3: broadcast over the channel axis", rand(1, 3, 3, 3, seed=2), m, s, axis),
        case("one channel (grey), batch 1", rand(1, 1, 4, 4, seed=3), torch.tensor([0.5]), torch.tensor([0.25]),
             "나눕니다 (divide by std), 곱하지 않습니다."),
        case("float64, 5 channels", rand(2, 5, 3, 2, seed=4, dtype=torch.float64),
             rand(5, seed=5, dtype=torch.float64), rand(5, seed=6, dtype=torch.float64) + 0.5),
    ]


def top_k_accuracy(logits, targets, k):
    """logits (N, C), targets (N,): the fraction (a float in [0, 1]) of samples whose target is among their k
    largest logits."""
    # BEGIN SOLUTION
    top = logits.topk(k, dim=1).indices  # (N, k)
    return (top == targets[:, None]).any(dim=1).float().mean().item()
    # END SOLUTION


def _topk_expected(logits, targets, k):
    ranks = (logits > logits.gather(1, targets[:, None])).sum(1)  # how many logits beat the target's
    return float((ranks < k).double().mean())


def _topk_cases() -> list[Case]:
    def case(name, logits, targets, k, hint=""):
        return Case(name, (logits, targets, k), _topk_expected(logits, targets, k), hint)
    fixed = torch.tensor([[0.1, 0.5, 0.2, 0.9], [2.0, 1.0, 0.0, -1.0], [0.0, 0.3, 0.2, 0.1]])
    return [
        case("k = 1 on 3 samples", fixed, torch.tensor([3, 1, 1]), 1,
             "비율(fraction)을 돌려주세요: 맞은 개수 / N (not the count)."),
        case("k = 2 on 3 samples", fixed, torch.tensor([1, 1, 2]), 2,
             "target 이 상위 k 개(top k) 안에 있으면 맞습니다: logits.topk(k, dim=1).indices."),
        case("k = C: always right", randn(5, 4, seed=1), torch.tensor([0, 1, 2, 3, 0]), 4),
        case("batch 1, k = 3 of 10", randn(1, 10, seed=2), torch.tensor([7]), 3),
        case("odd sizes 9x7, k = 3", randn(9, 7, seed=3), torch.tensor([0, 6, 2, 3, 4, 5, 1, 1, 2]), 3),
        case("float64, k = 2", randn(6, 3, seed=4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2]), 2),
    ]


def layerwise_lrs(num_stages, lr, decay):
    """Learning rates for num_stages stages of a network, earliest first: the last stage gets lr and each
    earlier one decay times the next (lr * decay^depth, depth counted from the top). Return a list of floats."""
    # BEGIN SOLUTION
    return [lr * decay ** (num_stages - 1 - i) for i in range(num_stages)]
    # END SOLUTION


def _lrs_cases() -> list[Case]:
    def case(name, n, lr, decay, hint=""):
        return Case(name, (n, lr, decay), [lr * decay ** (n - 1 - i) for i in range(n)], hint, rtol=1e-12,
                    atol=1e-15)
    return [
        case("4 stages, lr 0.01, decay 0.5", 4, 0.01, 0.5,
             "앞쪽(earliest) 단계일수록 작습니다: 마지막 단계가 lr, 그 앞은 lr * decay, ... (list, earliest first)."),
        case("one stage", 1, 0.1, 0.3),
        case("decay 1: one rate for all", 3, 1e-3, 1.0),
        case("7 stages, decay 0.8", 7, 3e-4, 0.8),
    ]


EXERCISES = [
    Exercise("week08.normalize_images", normalize_images,
             "사전 학습된(pretrained) backbone 이 기대하는 입력 정규화: 채널(channel)마다 (x - mean) / std.",
             "The input normalization a pretrained backbone expects: (x - mean) / std per channel.",
             _norm_cases, "(x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)"),
    Exercise("week08.top_k_accuracy", top_k_accuracy,
             "top-k 정확도(accuracy): target 이 상위 k 개 logit 안에 든 샘플의 비율.",
             "Top-k accuracy: the fraction of samples whose target is among their k largest logits.",
             _topk_cases, "logits.topk(k, dim=1).indices 와 targets[:, None] 을 비교하세요."),
    Exercise("week08.layerwise_lrs", layerwise_lrs,
             "미세 조정(fine-tuning)의 층별 학습률(discriminative learning rates): 앞 단계일수록 decay 배씩 작게.",
             "Discriminative learning rates for fine-tuning: each earlier stage decay times slower.",
             _lrs_cases, "[lr * decay ** (num_stages - 1 - i) for i in range(num_stages)]"),
]
