"""The weekly labs: one module per week, ``labs/weekNN_<name>.py`` (the lab contract is in esc_course.lab).

The registry and runner live in the library, in :mod:`esc_course.lab` (the only library module that imports a
lab); the names below are the same functions, so ``labs.load("xor")`` and ``labs.make_config(...)`` keep working.
"""

from esc_course.lab import LabInfo, get_info, headline, load, main, make_config, registry, run_one

__all__ = ["LabInfo", "get_info", "headline", "load", "main", "make_config", "registry", "run_one"]
