"""From-scratch teaching versions, each checked against PyTorch in the tests."""

from esc_course.scratch.autograd import Value, ValueMLP
from esc_course.scratch.gradcheck import GradcheckReport, gradcheck

__all__ = ["GradcheckReport", "Value", "ValueMLP", "gradcheck"]
