import torch

from esc_course.scratch import gradcheck


class GoodCube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2


class WrongCube(GoodCube):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x**2  # forgot the 3


def test_correct_backward_passes():
    x = torch.randn(6)
    report = gradcheck(GoodCube.apply, [x])
    assert report.passed, report
    assert report.max_rel_error < 1e-7


def test_wrong_backward_is_caught():
    report = gradcheck(WrongCube.apply, [torch.randn(6) + 0.5])
    assert not report.passed
    assert report.max_rel_error > 0.1
    assert "FAILED" in str(report)


def test_several_inputs_and_torch_ops():
    x, w = torch.randn(4, 3), torch.randn(3, 2)
    report = gradcheck(lambda a, b: torch.tanh(a @ b), [x, w])
    assert report.passed and len(report.rel_errors) == 2


def test_inputs_are_not_modified():
    x = torch.randn(3)
    before = x.clone()
    gradcheck(lambda a: a.sin(), [x])
    assert torch.equal(x, before)
