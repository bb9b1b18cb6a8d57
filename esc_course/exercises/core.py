"""The machinery behind every exercise: an Exercise with its Cases, and ``run_check``, which calls a student's
function on each case and turns whatever comes back (a wrong shape, a NaN, an exception, a stub) into a verdict.

A case's expected answer comes from PyTorch itself or the package's own from-scratch code (never from the
solution the stubs are made from), so a solution and its check cannot be wrong together.
"""

from __future__ import annotations

import copy
import html
import inspect
import math
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

TIME_LIMIT = 2.0  # seconds one check may take (all its cases) before the student's function counts as stuck
NOT_IMPLEMENTED = ("아직 구현되지 않았습니다 (not implemented yet): `raise NotImplementedError` 자리에 코드를 "
                   "채우세요 (replace it with your code).")


class WrongAnswer(Exception):
    """Raised by a case's runner when the student's answer has the wrong kind (the message says what)."""


class _TooSlow(BaseException):  # BaseException: a student's `except Exception` cannot swallow it
    pass


@dataclass(frozen=True)
class Case:
    """One call of the student's function: positional ``args`` in the signature's order, the ``expected`` answer
    (tensor, number, or a tuple of them), the tolerances, and the hint shown when this case fails.
    ``runner(fn, *args)`` replaces the plain ``fn(*args)`` where the answer needs more than a call (a Value's
    backward pass, checking that an input is left unchanged)."""

    name: str
    args: tuple
    expected: Any
    hint: str = ""
    rtol: float = 1e-5
    atol: float = 1e-6
    runner: Callable | None = None


@dataclass(frozen=True)
class Exercise:
    """``id`` is ``weekNN.name`` and ``name`` is the function the student defines; ``solution`` is the reference
    whose ``# BEGIN SOLUTION`` / ``# END SOLUTION`` lines the stub leaves out; ``cases()`` builds the cases."""

    id: str
    solution: Callable
    statement_ko: str
    statement_en: str
    cases: Callable[[], list[Case]]
    hint: str
    outputs: tuple[str, ...] = ("output",)
    imports: str = "import torch"
    output_hints: dict[str, str] = field(default_factory=dict)  # output name -> hint when that output is wrong

    @property
    def name(self) -> str:
        return self.id.split(".", 1)[1]

    @property
    def week(self) -> int:
        return int(self.id[4:6])

    @property
    def signature(self) -> str:
        return f"{self.name}{inspect.signature(self.solution)}"

    @property
    def params(self) -> list[str]:
        return list(inspect.signature(self.solution).parameters)


@dataclass
class CaseResult:
    name: str
    passed: bool
    message: str = ""
    inputs: str = ""
    hint: str = ""


@dataclass
class CheckResult:
    """The verdict of ``check``: ``passed``, a ``message`` naming the failing case, and every case's result.
    Shown as HTML in a notebook and as text elsewhere."""

    exercise_id: str
    passed: bool
    message: str
    cases: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return self.message

    def _repr_html_(self) -> str:
        color = "#1a7f37" if self.passed else "#cf222e"
        lines = html.escape(self.message).split("\n")
        head, rest = lines[0], "<br>".join(line for line in lines[1:] if not line.startswith("also failed: "))
        cases = " &middot; ".join(f'<span style="color:{"#1a7f37" if c.passed else "#cf222e"}">'
                                  f'{"✓" if c.passed else "✗"} {html.escape(c.name)}</span>' for c in self.cases)
        return (f'<div style="border-left:4px solid {color};padding:4px 10px;font-family:monospace">'
                f'<b style="color:{color}">{head}</b>{"<br>" + rest if rest else ""}'
                f'{"<br><small>cases: " + cases + "</small>" if cases and not self.passed else ""}</div>')


# -- describing values ------------------------------------------------------------------------------------------
def describe(value: Any) -> str:
    """A short description of an argument or answer: shape and dtype for a tensor, the value for a number."""
    if isinstance(value, torch.Tensor):
        where = "" if value.device.type == "cpu" else f" on {value.device}"
        return f"tensor{tuple(value.shape)} {str(value.dtype).replace('torch.', '')}{where}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(describe(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"{type(value).__name__}[{inner}]"
    if callable(value):
        return getattr(value, "__name__", "function")
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value) if len(repr(value)) < 60 else type(value).__name__


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _compare_tensor(got: Any, expected: torch.Tensor, where: str, rtol: float, atol: float) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"{where}: expected a torch.Tensor, got {type(got).__name__} ({describe(got)})"
    if got.device != expected.device:
        return f"{where} is on device {got.device}, expected {expected.device} (the inputs' device)"
    if tuple(got.shape) != tuple(expected.shape):
        return f"{where} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if got.dtype != expected.dtype:
        return (f"{where} has dtype {str(got.dtype).replace('torch.', '')}, expected "
                f"{str(expected.dtype).replace('torch.', '')} (keep the inputs' dtype)")
    g, e = got.detach().double(), expected.detach().double()
    bad_nan = torch.isnan(g) & ~torch.isnan(e)
    if bad_nan.any():
        first = tuple(int(i) for i in bad_nan.nonzero()[0])
        return f"{where} has NaN at {list(first)} ({int(bad_nan.sum())} of {g.numel()} entries), expected finite"
    close = torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    wrong = (~close).nonzero()
    entries = "; ".join(
        f"[{', '.join(str(int(i)) for i in idx)}] expected {_fmt(float(e[tuple(idx)]))} got {_fmt(float(g[tuple(idx)]))}"
        for idx in wrong[:3])
    finite = torch.isfinite(g) & torch.isfinite(e)
    rel = ((g - e).abs() / e.abs().clamp_min(atol))[finite & ~close]
    rel_text = f"; max relative error {float(rel.max()):.2e}" if rel.numel() else ""
    return (f"{where} differs in {len(wrong)} of {g.numel()} entries; first: {entries}{rel_text} "
            f"(tolerance rtol={rtol:g}, atol={atol:g})")


def compare(got: Any, expected: Any, where: str = "output", rtol: float = 1e-5, atol: float = 1e-6,
            names: Sequence[str] = ()) -> str | None:
    """None if ``got`` matches ``expected``, else one sentence on the first difference (kind, length, device,
    shape, dtype, NaN, values). ``names`` names the parts of a tuple answer."""
    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)):
            return (f"expected a tuple of {len(expected)} ({', '.join(names) or 'values'}), got "
                    f"{type(got).__name__} ({describe(got)})")
        if len(got) != len(expected):
            return f"expected {len(expected)} values ({', '.join(names)}), got {len(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            problem = compare(g, e, names[i] if i < len(names) else f"{where}[{i}]", rtol, atol)
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            return f"{where}: expected a list of {len(expected)} numbers, got {describe(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            problem = compare(g, e, f"{where}[{i}]", rtol, atol)
            if problem:
                return problem
        return None
    if isinstance(expected, torch.Tensor):
        return _compare_tensor(got, expected, where, rtol, atol)
    if isinstance(expected, bool) or not isinstance(expected, (int, float)):
        raise TypeError(f"cannot compare against {type(expected).__name__}")  # a bug in a case, not the student's
    if isinstance(expected, int):
        if isinstance(got, bool) or not isinstance(got, int):
            return f"{where}: expected an int, got {type(got).__name__} ({describe(got)})"
        return None if got == expected else f"{where}: expected {expected}, got {got}"
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = float(got.detach().cpu())
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return f"{where}: expected a number, got {type(got).__name__} ({describe(got)})"
    if math.isnan(got) and not math.isnan(expected):
        return f"{where} is NaN, expected {_fmt(expected)}"
    if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
        return None
    rel = abs(got - expected) / max(abs(expected), atol)
    return f"{where}: expected {_fmt(expected)}, got {_fmt(float(got))}; relative error {rel:.2e}"


# -- running a student's function -------------------------------------------------------------------------------
def _copy(value: Any) -> Any:
    """A fresh copy per call, so an answer that changes its inputs in place cannot change another case."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    if callable(value):
        return value
    return copy.deepcopy(value)


def _where_raised(err: BaseException) -> str:
    """' (line N in f)' of the innermost frame outside torch and this package: where the student's code broke."""
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if "/torch/" not in f.filename.replace("\\", "/") and not f.filename.endswith("exercises/core.py")]
    return f" (line {frames[-1].lineno} in {frames[-1].name})" if frames else ""


class _Deadline:
    """Stop a function that runs for more than ``seconds`` (SIGALRM: Unix, main thread; elsewhere no limit)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread())

    def _fire(self, signum, frame):
        raise _TooSlow()

    def __enter__(self):
        if self.armed:
            self.old = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
        return False


def _inputs(ex: Exercise, args: tuple) -> str:
    return ", ".join(f"{name}={describe(value)}" for name, value in zip(ex.params, args))


def run_check(ex: Exercise, fn: Any, time_limit: float = TIME_LIMIT) -> CheckResult:
    """Call ``fn`` on every case of ``ex``; never raises for anything ``fn`` does."""
    start = time.perf_counter()
    if not callable(fn):
        msg = (f"✗ {ex.id}: expected a function {ex.signature}, got {type(fn).__name__}\n"
               f"힌트 (hint): `def {ex.name}(...)` 로 정의한 함수를 넘기세요 (pass the function itself).")
        return CheckResult(ex.id, False, msg)
    results: list[CaseResult] = []
    stop = None
    with torch.random.fork_rng(devices=[]):  # a student's randomness must not move the notebook's generator
        cases = ex.cases()
        try:
            with _Deadline(time_limit):
                for case in cases:
                    args = _copy(case.args)
                    inputs = _inputs(ex, case.args)
                    hint = case.hint or ex.hint
                    try:
                        got = case.runner(fn, *args) if case.runner else fn(*args)
                        problem = compare(got, case.expected, rtol=case.rtol, atol=case.atol, names=ex.outputs)
                    except NotImplementedError:
                        stop = NOT_IMPLEMENTED
                        break
                    except WrongAnswer as err:
                        problem = str(err)
                    except SystemExit as err:  # exit() in a notebook would print a traceback-like notice
                        problem = f"called exit() / sys.exit({err.code!r}); return a value instead"
                    except RecursionError:
                        problem = "RecursionError: the function calls itself without end"
                    except Exception as err:  # noqa: BLE001 - any error of the student's code is a failed case
                        problem = f"raised {type(err).__name__}: {err}{_where_raised(err)}"
                    for out_name, out_hint in ex.output_hints.items():
                        if problem and problem.startswith(out_name + " "):
                            hint = out_hint
                    results.append(CaseResult(case.name, problem is None, problem or "", inputs, hint))
        except _TooSlow:
            stop = (f"시간 초과 (too slow): stopped after {time_limit:g} s. 무한 루프(infinite loop)나 "
                    f"원소별 Python 반복(element-wise Python loops)이 없는지 보세요; use tensor operations.")
    seconds = time.perf_counter() - start
    if stop:
        return CheckResult(ex.id, False, f"✗ {ex.id}: {stop}", results, seconds)
    failed = [r for r in results if not r.passed]
    if not failed:
        return CheckResult(ex.id, True, f"✓ {ex.id}: all {len(results)} cases passed", results, seconds)
    first = failed[0]
    others = "" if len(failed) == 1 else f"\nalso failed: {', '.join(r.name for r in failed[1:])}"
    msg = (f"✗ {ex.id}: case '{first.name}' failed ({len(results) - len(failed)} of {len(results)} cases "
           f"passed)\ninputs: {first.inputs}\n{first.message}{others}\n힌트 (hint): {first.hint}")
    return CheckResult(ex.id, False, msg, results, seconds)
