"""Week 2's phenomena, asserted on the quick run: the losses match torch, the slides' three step sizes behave as
the slides say, and per step the full batch wins while per sample seen stochastic gradient descent does."""

import pytest

from labs import week02_gradient_descent as lab


@pytest.fixture(scope="module")
def result():
    return lab.run(lab.Config(quick=True))


def test_losses_match_torch_and_cross_entropy_is_kl_plus_entropy(result):
    m = result.metrics
    assert m["loss_max_abs_diff_vs_torch"] < 1e-12
    assert m["cross_entropy_minus_kl_plus_entropy"] < 1e-12 and m["soft_label_entropy"] > 0.1
    names = {r["loss"] for r in result.tables["losses_vs_torch"]}
    assert {"mse", "huber", "cross_entropy", "binary_cross_entropy", "kl_divergence"} <= names
    softmax = [r["value"] for r in result.tables["output_activations"] if r["output"] == "softmax"]
    assert sum(softmax) == pytest.approx(1.0) and softmax == sorted(softmax, reverse=True)


def test_step_sizes_too_small_right_too_large(result):
    m = result.metrics
    start = result.tables["gradient_descent"][0]["start_loss"]
    assert result.tables["gradient_descent"][0]["steps"] == 20
    assert m["gd_final_loss_lr0.01"] > 0.2 * start and m["gd_overshoots_lr0.01"] == 0   # too small: creeps
    assert m["gd_final_loss_lr0.3"] < 1e-10 and m["gd_distance_lr0.3"] < 1e-6            # right
    assert m["gd_final_loss_lr0.6"] > 1e3 * start and m["gd_overshoots_lr0.6"] == 20     # too large: diverges
    verdicts = [r["verdict"] for r in result.tables["gradient_descent"]]
    assert verdicts[0].startswith("too small") and verdicts[1].startswith("right")
    assert verdicts[2].startswith("too large")


def test_batch_vs_minibatch_vs_stochastic(result):
    m, n = result.metrics, result.config["samples"]
    # equal samples seen (one epoch): more updates win
    assert m["stochastic_loss_after_1_epoch"] < m["minibatch_loss_after_1_epoch"] < m["batch_loss_after_1_epoch"]
    # equal number of updates: exact gradients win, noisy ones hover above the minimum
    assert m[f"batch_loss_after_{n}_steps"] < m[f"stochastic_loss_after_{n}_steps"]
    assert m[f"batch_loss_after_{n}_steps"] < 1.1 * m["noise_floor"]
    curves = result.history
    assert curves["regression_stochastic"]["steps"][1] == n and curves["regression_batch"]["steps"][1] == 1
    assert set(result.figures) == {"gd_contours", "gd_loss", "batch_vs_minibatch", "loss_functions", "convexity",
                                   "tiny_net_hessian"}


def test_quick_mode_is_fast(result):
    assert result.seconds < 20  # ~2 s on an idle 2-core CPU; generous for a loaded machine


def test_overrides_reach_the_run():
    r = lab.run(lab.Config(quick=True, gd_lrs=(0.1, 0.55), gd_steps=5, samples=64, epochs=1))
    assert [row["lr"] for row in r.tables["gradient_descent"]] == [0.1, 0.55]
    assert r.tables["gradient_descent"][0]["steps"] == 5 and "gd_final_loss_lr0.55" in r.metrics
    assert r.tables["batch_sizes"][0]["batch_size"] == 64


def test_studies_stand_alone_and_name_their_checkpoints(tmp_path):
    x, y = lab.regression_data(samples=32, features=3, noise=0.5, seed=1)
    study = lab.batch_size_study(x, y, minibatch=8, epochs=1, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch-batch", "batch-minibatch", "batch-stochastic"]
    assert lab.batch_size_study(x, y, minibatch=8, epochs=1, checkpoint_dir=tmp_path).rows == study.rows  # resumed
    assert study.row("batch")["steps_per_epoch"] == 1 and study.row("stochastic")["steps_per_epoch"] == 32
    assert study.equal_steps_key == "loss_after_32_steps"
    assert lab.batch_size_figure(study).axes and lab.step_size_contours_figure(lab.step_size_study(steps=3)).axes


def test_study_arguments_are_checked():
    with pytest.raises(ValueError, match="deltas=.*positive"):
        lab.loss_functions_figure(deltas=(0.0,))
    with pytest.raises(ValueError, match="lrs=.*positive"):
        lab.step_size_study(lrs=(-0.1,))
    with pytest.raises(ValueError, match="samples=0"):
        lab.regression_data(samples=0)
    fig = lab.loss_functions_figure(deltas=(0.5, 2.0))  # the notebook's exercise 2
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "MSE: r²", "Huber (δ = 0.5)", "Huber (δ = 2)", "|r|"]


def test_the_claims_the_notebook_states_hold(result):
    """Week 2's notebook, on the quick run: softmax(2, 1, 0.1) = (0.659, 0.242, 0.099); η = 0.45 converges, 0.5
    oscillates for ever, 0.55 diverges; cross-entropy equals KL divergence for one-hot labels; the captions match."""
    import torch

    from esc_course import losses

    softmax = [r["value"] for r in result.tables["output_activations"] if r["output"] == "softmax"]
    assert softmax == pytest.approx([0.659, 0.242, 0.099], abs=5e-4)
    edge = lab.step_size_study(lrs=(0.45, 0.5, 0.55), steps=20)
    assert [edge.row(lr)["verdict"] for lr in (0.45, 0.5, 0.55)] == [
        "right: converged", "too large: oscillates", "too large: diverges"]
    assert edge.paths[0.5][-1].tolist() == pytest.approx([1.0, 0.0], abs=1e-3)  # y back at 0 after 20 steps
    d = losses.cross_entropy_decomposition(torch.tensor([[2.0, 1.0, 0.1]], dtype=torch.float64),
                                           torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))
    assert d["label_entropy"] == 0 and d["cross_entropy"] == pytest.approx(d["kl_divergence"])
    assert set(result.captions) == set(result.figures) | {"losses_vs_torch", "cross_entropy_decomposition",
                                                         "gradient_descent", "batch_sizes", "nonconvex_minima",
                                                         "tiny_net_critical_points"}
    assert "η = 0.6: too large: diverges" in result.captions["gd_contours"]


def test_convex_one_minimum_nonconvex_several_and_the_tiny_nets_saddle(result):
    """Issue 18 item 1, on the quick run: 20 random starts of gradient descent all end in one minimum of the convex
    bowl (within the stated tolerance) and in more than one of Himmelblau's (the start decides); every run
    converged (gradient ~0). The 1-2-1 net's all-zeros start is a critical point with negative Hessian eigenvalues
    (a saddle), the random starts end at minima (no negative eigenvalue), not all of the same loss."""
    m = result.metrics
    assert result.config["convex_starts"] >= 20 and result.config["minima_tolerance"] == 1e-3
    assert m["convex_distinct_minima"] == 1 and m["nonconvex_distinct_minima"] > 1
    assert m["convexity_max_grad_norm_at_end"] < 1e-3  # |∇f| = 2|x - 1| ... : within 1e-3 of a minimum
    bowl_end = result.tables["convexity"][0]
    assert bowl_end["landscape"] == "bowl" and bowl_end["distinct_minima"] == 1
    assert sum(r["starts"] for r in result.tables["nonconvex_minima"]) == result.config["convex_starts"]
    assert all(r["f"] < 1e-8 for r in result.tables["nonconvex_minima"])  # each end point is one of the minima
    rows = {r["start"]: r for r in result.tables["tiny_net_critical_points"]}
    assert rows["zeros"]["kind"] == "saddle" and rows["zeros"]["negative"] >= 1 and rows["zeros"]["grad_norm"] < 1e-8
    randoms = [r for name, r in rows.items() if name.startswith("random")]
    assert all(r["kind"] == "minimum" and r["grad_norm"] < 1e-5 for r in randoms)
    assert m["tiny_net_distinct_minimum_losses"] > 1 and m["tiny_net_zero_start_negative_eigenvalues"] >= 1
    with pytest.raises(ValueError, match="tolerance=0"):
        lab.convexity_study(tolerance=0)
    with pytest.raises(ValueError, match="starts=0"):
        lab.hessian_study(starts=0)


def test_kl_divergence_is_cross_entropy_minus_entropy_and_not_negative():
    """The notebook's correction of the slides' KL line: KL(p||q) = H(p, q) - H(p) >= 0, = 0 iff p = q (so KL is
    H(p, q) only for one-hot p, and "> 0" fails at p = q)."""
    import torch

    from esc_course import losses

    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(6, 4, generator=g, dtype=torch.float64), -1)
    q = torch.softmax(torch.randn(6, 4, generator=g, dtype=torch.float64), -1)
    kl = losses.kl_divergence(p, q, reduction="none")
    h_pq = -(p * q.log()).sum(-1)
    assert torch.allclose(kl, h_pq - losses.entropy(p)) and bool((kl > 0).all())
    assert float(losses.kl_divergence(p, p)) == pytest.approx(0.0, abs=1e-15)
    assert bool((losses.entropy(p) > 0).all())  # soft p: KL differs from H(p, q)
