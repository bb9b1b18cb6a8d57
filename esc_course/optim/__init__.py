"""Optimizers from scratch, learning-rate schedules as pure functions, and 2-D test functions.

Submodules stay light: schedules and landscapes import matplotlib only inside their plotting functions.
"""

from esc_course.optim.optimizers import (
    OPTIMIZERS,
    SGD,
    SLIDES,
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    RMSprop,
    get_optimizer,
)

__all__ = ["OPTIMIZERS", "SGD", "SLIDES", "Adadelta", "Adagrad", "Adam", "AdamW", "RMSprop", "get_optimizer"]
