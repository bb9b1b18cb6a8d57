"""Week 7's lab: the phenomena its quick run must show (vanishing gradients, clipping, the LSTM-vs-RNN gap on the
adding problem, forecasting and a language model that beats character frequencies)."""

import json
import math

import pytest
import torch

from esc_course import lab
from esc_course.config import quick_variant
from esc_course.data.sequences import ADDING_BASELINE_MSE
from labs import week07_rnn


@pytest.fixture(autouse=True)
def one_thread():
    with week07_rnn.torch_threads(1):  # tiny recurrent steps: one thread is fastest and immune to busy machines
        yield


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("rnn")
    with week07_rnn.torch_threads(1):
        result = week07_rnn.run(week07_rnn.Config(quick=True), out=out)
    return result, out


def rows(result, table, **match):
    return [r for r in result.tables[table] if all(r[k] == v for k, v in match.items())]


def test_adding_problem_gap_at_the_quick_length(quick):
    result, _ = quick
    (length,) = week07_rnn.QUICK["adding_lengths"]
    by_cell = {r["cell"]: r for r in rows(result, "adding_problem", length=length)}
    assert set(by_cell) == {"rnn", "lstm", "gru"}
    assert by_cell["rnn"]["mse_over_baseline"] > 0.8  # the vanilla RNN stays at the constant-answer baseline
    assert by_cell["lstm"]["mse_over_baseline"] < 0.35
    assert by_cell["gru"]["mse_over_baseline"] < 0.35
    assert by_cell["rnn"]["val_mse"] > 3 * by_cell["lstm"]["val_mse"]
    baseline = by_cell["rnn"]["baseline_mse"]
    assert baseline == pytest.approx(ADDING_BASELINE_MSE, abs=0.03)  # 512 sequences: standard error ~0.009
    params = [r["params"] for r in by_cell.values()]
    assert max(params) / min(params) < 1.03  # the same parameter budget
    assert result.metrics[f"adding_mse_lstm_T{length}"] == by_cell["lstm"]["val_mse"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_adding_problem_gap_holds_across_seeds(seed):
    cfg = quick_variant(week07_rnn.Config(quick=True, seed=seed), week07_rnn.QUICK)
    data = week07_rnn.adding_data(cfg.adding_lengths, train_size=cfg.adding_train, val_size=cfg.adding_val,
                                  seed=seed)
    result = week07_rnn.adding_study(data, cells=("rnn", "lstm"), epochs=cfg.adding_epochs, seed=seed)
    by_cell = {r["cell"]: r["mse_over_baseline"] for r in result.rows}
    assert by_cell["rnn"] > 0.8 and by_cell["lstm"] < 0.35, by_cell


def test_gradients_vanish_in_the_vanilla_rnn_and_not_in_trained_gated_cells(quick):
    result, _ = quick
    ratio = {(r["model"], r["stage"]): r["first_over_last"] for r in result.tables["gradient_flow"]}
    assert ratio[("rnn", "init")] < 1e-6 and ratio[("rnn", "trained")] < 1e-6
    assert ratio[("lstm", "init")] > 1e-3  # the open forget gate carries the gradient from the start
    assert ratio[("lstm", "trained")] > 1e-3 and ratio[("gru", "trained")] > 1e-4
    assert ratio[("gru", "trained")] > 1e4 * ratio[("gru", "init")]  # the GRU learns to keep it
    gain = week07_rnn.Config().explode_gain
    exploding = ratio[(f"rnn_gain_{gain:g}", "init")]  # every singular value of W_hh > 1: no vanishing
    assert exploding > 1.0 and exploding > 1e6 * ratio[("rnn", "init")]  # it grows back through time (13 at seed 0)


def test_clipping_rescues_the_exploding_rnn(quick):
    result, _ = quick
    unclipped, clipped = result.tables["clipping"]
    assert unclipped["clip_grad_norm"] is None and clipped["clip_grad_norm"] == 1.0
    assert clipped["diverged_at_epoch"] is None and clipped["final_val_mse"] < 0.2  # the series' variance is ~0.6
    assert unclipped["final_val_mse"] > 100 * clipped["final_val_mse"]  # exploded (inf when it became NaN)


def test_forecasters_beat_persistence(quick):
    result, _ = quick
    for row in result.tables["sine_forecasting"]:
        assert row["test_mse"] < 0.7 * row["persistence_mse"], row


def test_language_model_beats_character_frequencies(quick):
    result, _ = quick
    m = result.metrics
    assert m["lm_val_loss"] < m["lm_unigram_val_loss"] - 0.3
    assert m["lm_val_perplexity"] == pytest.approx(math.exp(m["lm_val_loss"]))
    assert m["lm_val_bits_per_char"] == pytest.approx(m["lm_val_loss"] / math.log(2))
    samples = result.tables["lm_samples"]
    assert [s["temperature"] for s in samples] == list(week07_rnn.Config().temperatures)
    for s in samples:
        assert s["sample"].startswith("First Citizen:")
        assert len(s["sample"]) == len("First Citizen:") + week07_rnn.QUICK["sample_chars"]


def test_results_json_holds_the_table_and_the_lm_loss(quick):
    result, out = quick
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["lab"] == "rnn" and data["metrics"]["lm_val_loss"] == pytest.approx(result.metrics["lm_val_loss"])
    assert {r["cell"] for r in data["tables"]["adding_problem"]} == {"rnn", "lstm", "gru"}
    for name in ("gradient_norms", "adding_problem", "clipping", "sine_forecasts", "char_lm"):
        assert (out / f"{name}.png").stat().st_size > 1000


def test_language_model_on_a_user_text_file(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("하늘과 바람과 별과 시\n" * 30 + "stars and wind\n" * 30, encoding="utf-8")
    cfg = quick_variant(week07_rnn.Config(quick=True, text_file=str(path)), week07_rnn.QUICK)
    text, source = week07_rnn.lm_text(cfg)
    assert source == str(path)
    result = week07_rnn.language_model_study(text, embed=16, hidden=32, batch=8, bptt=20, epochs=2,
                                             sample_chars=10)
    assert result.metrics["lm_vocab_size"] == len(set(path.read_text("utf-8")))
    assert len(result.history["val_loss"]) == 2
    assert all(s["sample"].startswith("하늘과 바람과 별과 시") for s in result.samples)


def test_command_line_overrides_are_typed():
    cfg = lab.make_config("rnn", ["--adding_lengths=8,12", "--corpus=korean", "--temperatures=0.2,2"])
    assert cfg.adding_lengths == (8, 12) and cfg.corpus == "korean" and cfg.temperatures == (0.2, 2.0)


def test_bad_settings_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="lm_cell must be one of rnn, lstm, gru"):
        week07_rnn.run(week07_rnn.Config(quick=True, lm_cell="transformer"))
    with pytest.raises(ValueError, match="adding_lengths must hold at least one"):
        week07_rnn.run(week07_rnn.Config(quick=True, adding_lengths=()))
    with pytest.raises(ValueError, match="valid corpora"):
        week07_rnn.lm_text(week07_rnn.Config(corpus="latin"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        week07_rnn.lm_text(week07_rnn.Config(text_file=str(tmp_path / "nope.txt")))


def test_torch_threads_restores_the_setting():
    before = torch.get_num_threads()
    with week07_rnn.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_each_experiment_checkpoints_into_its_own_named_folder(quick):
    _, out = quick
    folders = {p.name for p in (out / "checkpoints").iterdir()}
    (length,) = week07_rnn.QUICK["adding_lengths"]
    # the unclipped run turns NaN in its second epoch, before fit's first throttled checkpoint is due and a NaN
    # state is never written: it leaves no folder
    assert {f"adding-T{length}-rnn", f"adding-T{length}-lstm", "clip-clip_1", "sine-gru", "char-lm"} <= folders
    assert "clip-no_clipping" not in folders
    assert all((out / "checkpoints" / f / "last.safetensors").is_file() for f in folders if f != "clip-no_clipping")


def test_a_study_resumes_from_its_checkpoint_folder(tmp_path):
    data = week07_rnn.sine_data(300, window=10, seed=3)
    first = week07_rnn.forecasting_study(data, cells=("gru",), hidden=8, epochs=2, checkpoint_dir=tmp_path)
    again = week07_rnn.forecasting_study(data, cells=("gru",), hidden=8, epochs=2, checkpoint_dir=tmp_path)
    assert again.rows == first.rows  # the finished run is loaded, not trained again from a new start
    assert (tmp_path / "sine-gru" / "last.safetensors").is_file()


def test_studies_reject_unknown_cells():
    with pytest.raises(ValueError, match="cells must be a non-empty selection of rnn, lstm, gru"):
        week07_rnn.forecasting_study(week07_rnn.sine_data(300, window=10), cells=("transformer",))
    with pytest.raises(ValueError, match="lm_cell must be one of"):
        week07_rnn.language_model_study("abc" * 100, cell="cnn")


@pytest.mark.parametrize("quick_mode", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_the_korean_explanation_the_notebook_prints_holds(quick_mode):
    """The notebook explains the Korean model's loss against the unigram baseline by the validation characters
    that never occur in training; those numbers must say so, in quick and in full mode."""
    from esc_course.config import settings
    from esc_course.data.text import corpus

    cfg = settings(week07_rnn, quick=quick_mode)
    result = week07_rnn.language_model_study(
        corpus("korean"), cell=cfg.lm_cell, embed=cfg.lm_embed, hidden=cfg.lm_hidden, layers=cfg.lm_layers,
        dropout=cfg.lm_dropout, batch=cfg.korean_batch, bptt=cfg.bptt, epochs=cfg.korean_epochs, lr=cfg.lm_lr,
        sample_chars=10, seed=cfg.seed)
    u, m = result.unseen, result.metrics
    assert u["unseen_fraction"] > 0.05  # 8.3 %: 30 of 360 validation characters
    assert u["model_loss_seen"] < u["unigram_loss_seen"] - 0.1  # the model is better on what it has seen
    assert u["model_loss_unseen"] > max(10.0, u["unigram_loss_unseen"] + 2)  # "loses over 10 nats on each"
    assert m["lm_train_loss"] < m["lm_val_loss"] - 1.5  # memorises the poems
    assert abs(m["lm_val_loss"] - m["lm_unigram_val_loss"]) < 0.5  # "similar to or worse than" the baseline
    overall = (1 - u["unseen_fraction"]) * u["model_loss_seen"] + u["unseen_fraction"] * u["model_loss_unseen"]
    assert overall == pytest.approx(m["lm_val_loss"], abs=0.02)  # the two parts make up the whole loss


def test_the_english_claims_the_notebook_prints_hold(quick):
    result, _ = quick
    m = result.metrics
    assert m["lm_val_loss"] < m["lm_unigram_val_loss"]  # the notebook prints "below the unigram baseline"
    assert result.captions.keys() >= set(result.figures)
