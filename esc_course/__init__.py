"""esc_course: the ESC study club's deep-learning course as one PyTorch package.

Importing this package is cheap: nothing is imported until it is used (PEP 562 ``__getattr__``), so
``esc-course --help`` starts without loading torch, and torchvision/matplotlib load only when a function needs them.

    >>> from esc_course import get_device, seed_everything, fit
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "get_device": "esc_course.device",
    "describe_device": "esc_course.device",
    "DeviceError": "esc_course.device",
    "seed_everything": "esc_course.seed",
    "fit": "esc_course.train",
    "train_epoch": "esc_course.train",
    "evaluate": "esc_course.train",
    "History": "esc_course.train",
    "NonFiniteLossError": "esc_course.train",
    "TensorLoader": "esc_course.data.loader",
    "LabResult": "esc_course.runs",
    "write_results": "esc_course.runs",
    "ConfigError": "esc_course.config",
    "get_optimizer": "esc_course.optim.optimizers",
    "vision": "esc_course.data.vision",
    "loaders": "esc_course.data.vision",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'esc_course' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: the next access is a plain lookup
    return value


def __dir__():
    return __all__
