"""The exercises: every reference passes, plausible mistakes fail naming their case, stubs say they are not
implemented, nothing a student's function does raises out of check(), and each check is fast."""

import inspect
import math
import time

import pytest
import torch
import torch.nn.functional as F

from esc_course.exercises import catalog, check, get
from esc_course.exercises.cells import solution_source, stub_source
from esc_course.exercises.core import run_check
from esc_course.scratch.autograd import Value

FIXED = {
    "week01.linear_backward": ["x", "w", "b", "grad_out"],
    "week01.value_tanh": ["value"],
    "week03.conv2d": ["x", "w", "b", "stride", "padding"],
    "week04.batch_norm_train": ["x", "gamma", "beta", "eps"],
    "week06.adam_step": ["param", "grad", "m", "v", "t", "lr", "beta1", "beta2", "eps"],
    "week07.lstm_cell": ["x", "h", "c", "w_ih", "w_hh", "b_ih", "b_hh"],
    "week09.pagerank": ["adjacency", "damping", "tol"],
}
IDS = [ex.id for ex in catalog()]


def compiled(ex, source):
    namespace = {}
    exec(compile(f"{ex.imports}\n{source}", f"<{ex.id}>", "exec"), namespace)
    return namespace[ex.name]


def test_catalog_covers_weeks_1_to_10_with_the_fixed_signatures():
    assert len(catalog()) >= 30
    for week in range(1, 11):
        assert len(catalog(week)) >= 3, week
    for ex in catalog():
        assert ex.id == f"week{ex.week:02d}.{ex.name}" and ex.statement_ko and ex.statement_en and ex.hint
    for ex_id, params in FIXED.items():
        assert get(ex_id).params == params, ex_id
    assert inspect.signature(get("week09.pagerank").solution).parameters["damping"].default == 0.85
    assert inspect.signature(get("week09.pagerank").solution).parameters["tol"].default == 1e-10
    with pytest.raises(ValueError, match="week06.adam_step"):
        get("week06.adam")
    with pytest.raises(ValueError, match="week 42"):
        catalog(42)


@pytest.mark.parametrize("ex_id", IDS)
def test_reference_and_its_solution_copy_pass_fast(ex_id):
    ex = get(ex_id)
    start = time.perf_counter()
    result = check(ex_id, ex.solution)
    assert time.perf_counter() - start < 2.0, f"{ex_id} took {time.perf_counter() - start:.2f} s"
    assert result.passed, result.message
    assert result.message.startswith("✓") and len(result.cases) >= 4
    assert check(ex_id, compiled(ex, solution_source(ex))).passed  # what the organisers' copy holds


@pytest.mark.parametrize("ex_id", IDS)
def test_stub_fails_as_not_implemented(ex_id):
    ex = get(ex_id)
    stub = stub_source(ex)
    assert "raise NotImplementedError  # 여기에 구현" in stub and "SOLUTION" not in stub
    assert stub.startswith(f"def {ex.name}(") and ex.solution.__doc__.strip().split("\n")[0] in stub
    body = set(solution_source(ex).split("\n")) - set(stub.split("\n"))
    assert body and not any(line.strip() and line in stub for line in body)  # no solution line in the stub
    result = check(ex_id, compiled(ex, stub))
    assert not result.passed
    assert "not implemented yet" in result.message and "구현되지 않았습니다" in result.message


# -- plausible mistakes: (function, text the message must contain) ---------------------------------------------
def _tanh_assign(value):  # grad = instead of += : a Value used twice loses a path
    t = math.tanh(value.data)
    out = Value(t, (value,), "tanh")

    def _backward():
        value.grad = (1 - t * t) * out.grad
    out._backward = _backward
    return out


def _tanh_no_upstream(value):
    t = math.tanh(value.data)
    out = Value(t, (value,), "tanh")

    def _backward():
        value.grad += 1 - t * t
    out._backward = _backward
    return out


def _tanh_input_derivative(value):  # 1 - x^2 instead of 1 - tanh(x)^2
    out = Value(math.tanh(value.data), (value,), "tanh")

    def _backward():
        value.grad += (1 - value.data**2) * out.grad
    out._backward = _backward
    return out


def _ce_naive(logits, target):
    p = logits.exp() / logits.exp().sum(1, keepdim=True)
    return -p[torch.arange(len(target)), target].log().mean()


def _numgrad_forward(f, x, eps):
    g = torch.zeros_like(x)
    base = float(f(x))
    for i in range(x.numel()):
        x.view(-1)[i] += eps
        g.view(-1)[i] = (float(f(x)) - base) / eps
        x.view(-1)[i] -= eps
    return g


def _numgrad_no_restore(f, x, eps):
    g = torch.zeros_like(x)
    for i in range(x.numel()):
        x.view(-1)[i] += eps
        plus = float(f(x))
        x.view(-1)[i] -= 2 * eps
        g.view(-1)[i] = (plus - float(f(x))) / (2 * eps)
    return g


def _bn(x, gamma, beta, eps, unbiased=False, dim=0, eps_outside=False):
    mean, var = x.mean(dim, keepdim=True), x.var(dim, unbiased=unbiased, keepdim=True)
    std = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
    return gamma * (x - mean) / std + beta


def _bn_backward_constant_stats(x, gamma, g, eps):
    std = (x.var(0, unbiased=False) + eps).sqrt()
    x_hat = (x - x.mean(0)) / std
    return g * gamma / std, (g * x_hat).sum(0), g.sum(0)


def _bn_backward_beta_mean(x, gamma, g, eps):
    from esc_course.exercises.norm import batch_norm_backward

    gx, gg, _ = batch_norm_backward(x, gamma, g, eps)
    return gx, gg, g.mean(0)


def _adam(param, grad, m, v, t, lr, b1, b2, eps, correct=True, eps_inside=False, return_hat=False):
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad**2
    m_hat, v_hat = (m / (1 - b1**t), v / (1 - b2**t)) if correct else (m, v)
    denom = (v_hat + eps).sqrt() if eps_inside else v_hat.sqrt() + eps
    param = param - lr * m_hat / denom
    return (param, m_hat, v_hat) if return_hat else (param, m, v)


def _lstm(x, h, c, w_ih, w_hh, b_ih, b_hh, order="ifgo", tanh_c=True):
    parts = dict(zip(order, (x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, 1)))
    c = torch.sigmoid(parts["f"]) * c + torch.sigmoid(parts["i"]) * torch.tanh(parts["g"])
    return torch.sigmoid(parts["o"]) * (torch.tanh(c) if tanh_c else c), c


def _gru(x, h, w_ih, w_hh, b_ih, b_hh, swap=False, bias_outside=False):
    xr, xz, xn = (x @ w_ih.T + b_ih).chunk(3, 1)
    hr, hz, hn = (h @ w_hh.T + b_hh).chunk(3, 1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    if bias_outside:
        hn = (h @ w_hh.T).chunk(3, 1)[2]
        n = torch.tanh(xn + r * hn + b_hh.chunk(3)[2])
    else:
        n = torch.tanh(xn + r * hn)
    return z * n + (1 - z) * h if swap else (1 - z) * n + z * h


def _pagerank(a, damping=0.85, tol=1e-10, damp=True, spread=True):
    a = a.double()
    n = len(a)
    out = a.sum(1)
    walk = a / out.clamp_min(1e-300)[:, None]
    x = torch.full((n,), 1.0 / n, dtype=torch.float64)
    d = damping if damp else 1.0
    for _ in range(500):
        leak = (x @ (out == 0).double()) / n if spread else 0.0
        new = d * (x @ walk + leak) + (1 - d) / n
        done = (new - x).abs().sum() < tol
        x = new
        if done:
            break
    return x.to(a.dtype) if a.dtype == torch.float64 else x.float()


def _gcn_hat(a, loops=True, kind="sym"):
    a = a + torch.eye(len(a), dtype=a.dtype) if loops else a
    d = a.sum(1)
    return a / d[:, None] if kind == "rw" else d.pow(-0.5)[:, None] * a * d.pow(-0.5)[None, :]


MISTAKES = {
    "week01.linear_backward": [
        (lambda x, w, b, g: (g @ w, g.T @ x, g.mean(0)), "grad_b differs"),
        (lambda x, w, b, g: (g @ w, x.T @ g, g.sum(0)), "grad_w has shape"),
    ],
    "week01.value_tanh": [
        (_tanh_assign, "gradients accumulate"), (_tanh_no_upstream, "the upstream gradient"),
        (_tanh_input_derivative, "tanh(0.5)"),
    ],
    "week01.relu_backward": [
        (lambda x, g: g * (x >= 0).to(g.dtype), "x = 0 exactly"), (lambda x, g: (x > 0).to(g.dtype), "fixed 2x3"),
    ],
    "week02.cross_entropy": [
        (lambda z, t: -F.log_softmax(z, 1)[torch.arange(len(t)), t].sum(), "fixed 3x4"),
        (_ce_naive, "large logits"),
    ],
    "week02.huber_loss": [
        (lambda p, t, d: F.smooth_l1_loss(p, t, beta=d), "delta = 2"),
        (lambda p, t, d: torch.where((p - t).abs() <= d, (p - t) ** 2, d * ((p - t).abs() - 0.5 * d)).mean(),
         "fixed, delta = 1"),
    ],
    "week02.numerical_gradient": [(_numgrad_forward, "eps = 1e-3"), (_numgrad_no_restore, "x was changed")],
    "week03.conv2d": [
        (lambda x, w, b, s, p: F.conv2d(x, w.flip(2, 3), b, stride=s, padding=p), "asymmetric 2x2 kernel"),
        (lambda x, w, b, s, p: F.conv2d(x, w, b, stride=1, padding=p), "case 'stride 2'"),
        (lambda x, w, b, s, p: F.conv2d(x, w, b, stride=s), "case 'padding 1'"),
    ],
    "week03.max_pool2d": [
        (lambda x, k, s: F.avg_pool2d(x, k, s), "4x4, kernel 2"),
        (lambda x, k, s: F.max_pool2d(x, k, s).clamp_min(0), "all-negative input"),
    ],
    "week03.conv_output_size": [
        (lambda n, k, s, p: (n + 2 * p - k) / s + 1, "expected an int"),
        (lambda n, k, s, p: (n + p - k) // s + 1, "padding 2 keeps 32"),
    ],
    "week04.batch_norm_train": [
        (lambda x, g, b, e: _bn(x, g, b, e, unbiased=True), "batch 2"),
        (lambda x, g, b, e: _bn(x, g, b, e, eps_outside=True), "eps = 0.1"),
        (lambda x, g, b, e: _bn(x, g, b, e, dim=1), "case 'batch 2"),
    ],
    "week04.layer_norm": [
        (lambda x, g, b, e: _bn(x, g, b, e, dim=0), "per sample"),
        (lambda x, g, b, e: _bn(x, g, b, e, dim=-1, unbiased=True), "4x6"),
    ],
    "week04.batch_norm_backward": [
        (_bn_backward_constant_stats, "grad_x differs"), (_bn_backward_beta_mean, "grad_beta differs"),
    ],
    "week05.inverted_dropout": [
        (lambda x, m, p: x * m, "p = 0.5"), (lambda x, m, p: x * m / p if p else x, "p = 0.2"),
    ],
    "week05.l2_penalty": [
        (lambda ps: sum((p**2).mean() for p in ps), "two tensors"),
        (lambda ps: torch.sqrt(sum((p**2).sum() for p in ps)), "two tensors"),
    ],
    "week05.weight_decay_step": [
        (lambda p, g, lr, wd: p * (1 - wd) - lr * g, "lr 0.1, weight_decay 0.01"),
        (lambda p, g, lr, wd: p - lr * (g - wd * p), "lr 0.1, weight_decay 0.01"),
    ],
    "week06.adam_step": [
        (lambda *a: _adam(*a, correct=False), "t = 1 from m = v = 0 (bias correction)"),
        (lambda *a: _adam(*a, eps_inside=True), "eps = 0.1 outside the square root"),
        (lambda *a: _adam(*a, return_hat=True), "m differs"),
    ],
    "week06.sgd_momentum_step": [
        (lambda p, g, buf, lr, mu: (p - lr * (mu * buf + (1 - mu) * g), mu * buf + (1 - mu) * g), "momentum 0.9"),
        (lambda p, g, buf, lr, mu: (p - lr * g, mu * buf + g), "momentum 0.9"),
    ],
    "week06.rmsprop_step": [
        (lambda p, g, s, lr, a, e: (p - lr * g / (a * s + (1 - a) * g**2 + e).sqrt(), a * s + (1 - a) * g**2),
         "eps = 0.1"),
        (lambda p, g, s, lr, a, e: (p - lr * g / ((a * s + g**2).sqrt() + e), a * s + g**2), "alpha 0.99"),
    ],
    "week07.lstm_cell": [
        (lambda *a: _lstm(*a, order="ifog"), "gate order"), (lambda *a: _lstm(*a, tanh_c=False), "batch 1"),
    ],
    "week07.rnn_cell": [
        (lambda x, h, wi, wh, bi, bh: torch.relu(x @ wi.T + bi + h @ wh.T + bh), "not relu"),
        (lambda x, h, wi, wh, bi, bh: torch.tanh(x @ wi.T + bi + h @ wh.T), "b_ih, b_hh"),
    ],
    "week07.gru_cell": [
        (lambda *a: _gru(*a, swap=True), "(1 - z) * n + z * h"), (lambda *a: _gru(*a, bias_outside=True), "b_hn"),
    ],
    "week08.normalize_images": [
        (lambda x, m, s: (x - m) / s, "raised RuntimeError"),
        (lambda x, m, s: (x - m.view(1, -1, 1, 1)) * s.view(1, -1, 1, 1), "ImageNet statistics"),
    ],
    "week08.top_k_accuracy": [
        (lambda z, t, k: int((z.topk(k, 1).indices == t[:, None]).any(1).sum()), "k = 1 on 3 samples"),
        (lambda z, t, k: float((z.argmax(1) == t).double().mean()), "k = 2 on 3 samples"),
    ],
    "week08.layerwise_lrs": [
        (lambda n, lr, d: [lr * d**i for i in range(n)], "4 stages"),
        (lambda n, lr, d: [lr * d ** (n - i) for i in range(n)], "4 stages"),
    ],
    "week09.pagerank": [
        (lambda a, d=0.85, tol=1e-10: _pagerank(a, d, tol, damp=False), "4 nodes, every node has out-edges"),
        (lambda a, d=0.85, tol=1e-10: _pagerank(a, d, tol, spread=False), "dangling node 2"),
    ],
    "week09.gcn_normalize": [
        (lambda a: _gcn_hat(a, loops=False), "path 0-1-2"), (lambda a: _gcn_hat(a, kind="rw"), "star"),
    ],
    "week10.causal_mask": [
        (lambda t: torch.ones(t, t, dtype=torch.bool).triu(), "t = 2"),
        (lambda t: torch.ones(t, t, dtype=torch.bool).tril(-1), "t = 1"),
    ],
    "week10.scaled_dot_product_attention": [
        (lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=1.0), "scaled by sqrt(d)"),
        (lambda q, k, v, m: (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-2) @ v, "softmax over keys"),
        (lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=None if m is None else ~m.tril(-1)),
         "causal mask"),
    ],
    "week10.split_heads": [
        (lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h), "B=1, T=3, E=4, 2 heads"),
        (lambda x, h: x.reshape(x.shape[0], x.shape[1], h, -1), "one head"),
    ],
    "week09.gcn_layer": [
        (lambda a, x, w: _gcn_hat(a) @ x @ w, "path of 4"), (lambda a, x, w: torch.relu(a @ x @ w), "path of 4"),
    ],
}


def test_every_exercise_has_two_mistakes():
    assert sorted(MISTAKES) == sorted(IDS)
    assert all(len(v) >= 2 for v in MISTAKES.values())


@pytest.mark.parametrize("ex_id", IDS)
def test_mistakes_fail_naming_their_case(ex_id):
    for k, (fn, text) in enumerate(MISTAKES[ex_id]):
        result = check(ex_id, fn)
        assert not result.passed, f"{ex_id} mistake {k} passed"
        assert text in result.message, f"{ex_id} mistake {k}: {result.message}"
        assert "hint" in result.message and "inputs:" in result.message
        assert "Traceback" not in result.message


# -- what a wrong answer can be: never an exception out of check() ---------------------------------------------
def _conv_recursive(*a):
    return _conv_recursive(*a)


def _conv_ref(*a):
    return get("week03.conv2d").solution(*a)


WRONG_KINDS = [
    ("an exception", lambda *a: 1 / 0, "raised ZeroDivisionError: division by zero (line"),
    ("a wrong shape", lambda *a: _conv_ref(*a)[:, :, :-1], "has shape"),
    ("a NaN", lambda *a: _conv_ref(*a) * float("nan"), "has NaN at"),
    ("a wrong dtype", lambda *a: _conv_ref(*a).half(), "has dtype float16, expected float32"),
    ("another device", lambda *a: _conv_ref(*a).to("meta"), "is on device meta, expected cpu"),
    ("a wrong return type", lambda *a: _conv_ref(*a).tolist(), "expected a torch.Tensor, got list"),
    ("None", lambda *a: None, "expected a torch.Tensor, got NoneType"),
    ("exit()", lambda *a: exit(3), "called exit() / sys.exit(3)"),
    ("endless recursion", lambda *a: _conv_recursive(*a), "RecursionError"),
    ("not a function", 42, "expected a function"),
]


@pytest.mark.parametrize("kind, fn, text", WRONG_KINDS, ids=[w[0] for w in WRONG_KINDS])
def test_wrong_answers_of_every_kind_are_failed_cases(kind, fn, text):
    result = check("week03.conv2d", fn)
    assert not result.passed and text in result.message, result.message
    assert "Traceback" not in result.message and "힌트 (hint)" in result.message


def test_wrong_tuple_answers_and_values():
    assert "expected a tuple of 3 (param, m, v)" in check("week06.adam_step", lambda *a: a[0]).message
    assert "expected 3 values" in check("week06.adam_step", lambda *a: (a[0], a[2])).message
    msg = check("week01.value_tanh", lambda v: math.tanh(v.data)).message
    assert "expected a Value, got float" in msg


def test_a_stuck_function_is_stopped():
    def forever(*args):
        while True:
            pass
    start = time.perf_counter()
    result = run_check(get("week09.pagerank"), forever, time_limit=0.5)
    assert time.perf_counter() - start < 2.0
    assert not result.passed and "too slow" in result.message


def test_check_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check("week05.inverted_dropout", lambda x, m, p: torch.rand_like(x))
    assert torch.equal(torch.rand(3), expected)


def test_result_display_names_case_shapes_and_hint():
    result = check("week06.adam_step", MISTAKES["week06.adam_step"][0][0])
    html = result._repr_html_()
    assert "t = 1 from m = v = 0 (bias correction)" in html and "param=tensor(3, 4) float32" in html
    assert "편향 보정(bias correction)" in html and "max relative error" in html and "expected" in html
    assert "✗ t = 10, lr 0.01" in html  # every case's verdict, the failing ones marked
    assert str(result) == result.message == repr(result) and not result
    ok = check("week06.adam_step", get("week06.adam_step").solution)
    assert ok and "✓" in ok._repr_html_()
