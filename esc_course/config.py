"""Typed ``--key=value`` overrides onto a lab's dataclass ``Config``, and quick mode.

    cfg = parse_overrides(Config, ["--epochs=5", "--lr=0.3", "--quick"])

Values are converted to the field's annotated type (int, float, bool, str, a tuple of those, or None where the
annotation allows it); an unknown key or a value of the wrong type raises ConfigError naming what is valid.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar, Union, get_args, get_origin

C = TypeVar("C")


class ConfigError(ValueError):
    """A bad override: unknown key or a value that does not fit the field's type."""


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _convert(key: str, text: str, tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if type(None) in options and text.lower() in ("none", "null", ""):
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(key, text, option)
            except ConfigError:
                pass
        raise ConfigError(f"--{key}={text!r}: expected {_type_name(tp)}")
    if origin in (tuple, list):
        args = get_args(tp)
        item = args[0] if args else str
        parts = [p for p in text.replace(" ", "").split(",") if p != ""]
        values = [_convert(key, p, item) for p in parts]
        return tuple(values) if origin is tuple else values
    if origin is typing.Literal:
        allowed = get_args(tp)
        if text not in allowed:
            raise ConfigError(f"--{key}={text!r}: expected one of {', '.join(map(str, allowed))}")
        return text
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"--{key}={text!r}: expected a boolean (true/false, yes/no, 1/0)")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"--{key}={text!r}: expected an integer") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"--{key}={text!r}: expected a number") from None
    if tp is str or tp is Any:
        return text
    raise ConfigError(f"--{key}: fields of type {_type_name(tp)} cannot be set from the command line")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def describe_fields(cls) -> str:
    """One line per field: name, type and default, for error messages and --help."""
    types_ = _field_types(cls)
    defaults = cls()
    return "\n".join(
        f"  --{name}={getattr(defaults, name)!r}  ({_type_name(tp)})" for name, tp in types_.items()
    )


def apply_overrides(cfg: C, overrides: dict[str, Any]) -> C:
    """Return a copy of ``cfg`` with ``overrides`` (strings are converted to the field's type)."""
    types_ = _field_types(type(cfg))
    changes = {}
    for key, value in overrides.items():
        name = key.replace("-", "_")
        if name not in types_:
            raise ConfigError(
                f"unknown setting --{key} for {type(cfg).__qualname__}; valid settings:\n"
                + describe_fields(type(cfg))
            )
        changes[name] = _convert(key, value, types_[name]) if isinstance(value, str) else value
    new = dataclasses.replace(cfg, **changes)
    check_common(new)
    return new


def parse_overrides(cls: type[C], argv: list[str], base: C | None = None) -> C:
    """Build a Config from ``--key=value`` arguments (``--flag`` alone means true for booleans)."""
    overrides: dict[str, str] = {}
    types_ = _field_types(cls)
    for arg in argv:
        if not arg.startswith("--"):
            raise ConfigError(f"expected --key=value, got {arg!r}; valid settings:\n" + describe_fields(cls))
        key, sep, value = arg[2:].partition("=")
        if not sep:
            name = key.replace("-", "_")
            if types_.get(name) is bool:
                value = "true"
            elif name.startswith("no_") and types_.get(name[3:]) is bool:
                key, value = name[3:], "false"
            else:
                raise ConfigError(f"--{key} needs a value: --{key}=VALUE")
        overrides[key] = value
    return apply_overrides(base if base is not None else cls(), overrides)


def check_common(cfg: Any) -> None:
    """Refuse values no lab can use, by the field names labs share: learning rates (``lr``, ``*_lr``, ``lrs``)
    must be > 0, ``epochs``/``steps`` >= 0 and ``batch_size`` >= 1. Raises ConfigError naming field and value."""
    for f in dataclasses.fields(cfg):
        value, name = getattr(cfg, f.name), f.name
        values = value if isinstance(value, (tuple, list)) else (value,)
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if (name == "lr" or name.endswith("_lr") or name.endswith("lrs")) and any(v <= 0 for v in numbers):
            raise ConfigError(f"--{name}={value!r}: a learning rate must be a positive number (> 0)")
        if name in ("epochs", "steps") and any(v < 0 for v in numbers):
            raise ConfigError(f"--{name}={value!r}: must be an integer >= 0")
        if name == "batch_size" and any(v < 1 for v in numbers):
            raise ConfigError(f"--{name}={value!r}: must be an integer >= 1")


def quick_variant(cfg: C, quick: dict[str, Any]) -> C:
    """``check_common(cfg)``, then apply a lab's quick-mode settings to ``cfg`` when ``cfg.quick`` is set.

    Only fields still at their default value are changed, so ``--quick --epochs=50`` keeps the 50.
    """
    check_common(cfg)
    if not getattr(cfg, "quick", False):
        return cfg
    defaults = type(cfg)()
    changes = {k: v for k, v in quick.items() if getattr(cfg, k) == getattr(defaults, k)}
    return dataclasses.replace(cfg, **changes)


def env_quick(default: bool = False) -> bool:
    """Quick mode for notebooks: ESC_QUICK=1 in the environment (the tests set it); else ``default``."""
    import os

    value = os.environ.get("ESC_QUICK", "").strip().lower()
    if not value:
        return default
    return value in _TRUE


def settings(lab: Any, quick: bool = False, **overrides: Any) -> Any:
    """A lab's Config as its run would use it: ``lab.Config(quick=quick, **overrides)`` with the lab's quick-mode
    settings (``lab.QUICK``) applied, for a notebook whose cells call the lab's studies one at a time.

    ``lab`` is the lab module (``from labs import week04_training``); it is read, never imported here.
    """
    cfg = lab.Config(quick=quick, **overrides) if "quick" in {f.name for f in dataclasses.fields(lab.Config)} \
        else lab.Config(**overrides)
    return quick_variant(cfg, getattr(lab, "QUICK", {}))
