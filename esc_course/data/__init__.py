"""Data: embedded toy and image data, loaders and splits.

Submodules are imported on use, so ``import esc_course.data`` stays cheap.
"""

from esc_course.data.loader import TensorLoader

__all__ = ["TensorLoader"]
