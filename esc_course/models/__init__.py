"""Models with explicit keyword arguments. Submodules that need torchvision import it only when used."""

from esc_course.models.activations import ACTIVATIONS, Maxout, get_activation
from esc_course.models.init import init_weights
from esc_course.models.mlp import MLP, count_parameters

__all__ = ["ACTIVATIONS", "MLP", "Maxout", "count_parameters", "get_activation", "init_weights"]
