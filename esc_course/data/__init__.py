"""Data: embedded toy and image data, loaders, splits and augmentation.

``esc_course.data.vision(name, ...)`` and ``esc_course.data.loaders(name, ...)`` are the one entry point for image
data sets (embedded digits and shapes; MNIST, FashionMNIST, CIFAR-10 and ImageFolders through torchvision).
torchvision itself is imported only when a real data set is loaded.
"""

from esc_course.data.loader import TensorLoader
from esc_course.data.vision import DATASETS, loaders, vision

__all__ = ["DATASETS", "TensorLoader", "loaders", "vision"]
