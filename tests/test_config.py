from dataclasses import dataclass

import pytest

from esc_course.config import ConfigError, env_quick, parse_overrides, quick_variant


@dataclass
class Cfg:
    lr: float = 0.1  # step size
    epochs: int = 30
    name: str = "mlp"
    hidden: tuple[int, ...] = (8, 8)
    limit: int | None = None
    quick: bool = False


def test_typed_overrides():
    cfg = parse_overrides(Cfg, ["--lr=0.3", "--epochs=5", "--name=cnn", "--hidden=4,2,1", "--limit=none", "--quick"])
    assert cfg == Cfg(lr=0.3, epochs=5, name="cnn", hidden=(4, 2, 1), limit=None, quick=True)
    assert isinstance(cfg.lr, float) and isinstance(cfg.epochs, int)
    assert parse_overrides(Cfg, ["--limit=3"]).limit == 3
    assert parse_overrides(Cfg, ["--no-quick"]).quick is False


def test_unknown_key_lists_valid_ones():
    with pytest.raises(ConfigError) as err:
        parse_overrides(Cfg, ["--lrr=0.3"])
    msg = str(err.value)
    assert "--lrr" in msg and "--lr=" in msg and "--epochs=" in msg


@pytest.mark.parametrize("arg, expected", [
    ("--epochs=ten", "expected an integer"),
    ("--epochs=1.5", "expected an integer"),
    ("--lr=fast", "expected a number"),
    ("--quick=maybe", "expected a boolean"),
    ("--hidden=4,x", "expected an integer"),
    ("--epochs", "needs a value"),
    ("epochs=3", "expected --key=value"),
])
def test_wrong_types_are_refused(arg, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_overrides(Cfg, [arg])


def test_quick_variant_keeps_explicit_values():
    quick = {"epochs": 2, "lr": 0.5}
    assert quick_variant(Cfg(), quick) == Cfg()  # quick off: unchanged
    assert quick_variant(Cfg(quick=True), quick) == Cfg(quick=True, epochs=2, lr=0.5)
    assert quick_variant(Cfg(quick=True, epochs=50), quick).epochs == 50


def test_env_quick(monkeypatch):
    monkeypatch.delenv("ESC_QUICK", raising=False)
    assert env_quick() is False and env_quick(True) is True
    monkeypatch.setenv("ESC_QUICK", "1")
    assert env_quick() is True
