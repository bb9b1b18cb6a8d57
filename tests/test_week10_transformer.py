"""Week 10: the recall data, the Transformer LM, and the lab's quick run showing what the notebook states."""

import math

import pytest
import torch

from esc_course.data.recall import associative_recall, indexed_recall, recall_vocab_size
from esc_course.models import count_parameters
from esc_course.models.transformer import TransformerLM, sinusoidal_positions
from labs import week10_transformer as lab


def test_associative_recall_targets_are_the_queried_pairs_values():
    x, y = associative_recall(200, 12, keys=5, values=3, generator=0)
    assert x.shape == (200, 12) and y.shape == (200,) and x.dtype == y.dtype == torch.long
    assert int(x.max()) < recall_vocab_size(5, 3)
    pairs, asked = x[:, :-1], x[:, -1] - 15
    for row, key, target in zip(pairs, asked, y):
        hits = row[row // 3 == key]
        assert len(hits) >= 1 and set((hits % 3).tolist()) == {int(target)}  # one dictionary per sequence


def test_indexed_recall_answers_the_symbol_at_the_position():
    x, y = indexed_recall(50, 9, symbols=4, generator=1)
    where = x[:, -1] - 4
    assert torch.equal(x[torch.arange(50), where], y) and int(where.max()) < 8


@pytest.mark.parametrize("bad", [dict(length=1), dict(n=0, length=5)])
def test_recall_refuses_bad_sizes(bad):
    with pytest.raises(ValueError, match="must be"):
        associative_recall(**{"n": 4, **bad})


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "none"])
def test_transformer_lm_shapes_causality_and_no_nan(positions):
    torch.manual_seed(0)
    model = TransformerLM(11, context=9, d_model=16, n_heads=2, n_layers=2, positions=positions).eval()
    ids = torch.randint(0, 11, (3, 9))
    logits = model(ids)
    assert logits.shape == (3, 9, 11) and torch.isfinite(logits).all()
    changed = ids.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 11  # a later token must not change earlier predictions
    again = model(changed)
    torch.testing.assert_close(again[:, :6], logits[:, :6])
    assert not torch.allclose(again[:, 6:], logits[:, 6:])
    maps = model.attention_maps(ids)
    assert len(maps) == 2 and maps[0].shape == (3, 2, 9, 9)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(3, 2, 9))
    assert torch.all(maps[0].triu(diagonal=1) == 0)


def test_transformer_lm_options_and_errors():
    tied = TransformerLM(7, context=4, d_model=8, n_heads=2, n_layers=1, tie_weights=True)
    assert tied.head.weight is tied.embed.weight
    assert count_parameters(tied) < count_parameters(TransformerLM(7, context=4, d_model=8, n_heads=2, n_layers=1))
    assert tied.generate(torch.tensor([1, 2]), 6, generator=torch.Generator().manual_seed(0)).shape == (8,)
    with pytest.raises(ValueError, match="longer than the model's context=4"):
        tied(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown positions 'rope'"):
        TransformerLM(7, context=4, positions="rope")
    pe = sinusoidal_positions(10, 6)
    assert pe.shape == (10, 6) and float(pe[0, 1]) == 1.0 and float(pe[3, 0]) == pytest.approx(math.sin(3))


def test_recurrent_models_are_sized_to_the_transformer():
    for kind in ("lstm", "gru"):
        model = lab.build_model(kind, 144, 32, d_model=32, n_heads=2, n_layers=2)
        ref = count_parameters(lab.build_model("transformer", 144, 32, d_model=32, n_heads=2, n_layers=2))
        assert abs(count_parameters(model) - ref) / ref < 0.03


@pytest.fixture(scope="module")
def quick():
    return lab.run(lab.Config(quick=True, device="cpu"))


def test_quick_run_has_the_metrics(quick):
    cfg = lab.quick_variant(lab.Config(quick=True), lab.QUICK)
    for model in cfg.recall_models:
        for length in cfg.recall_lengths:
            assert 0 <= quick.metrics[f"recall_accuracy_{model}_T{length}"] <= 1
    for key in ("lm_val_loss_transformer", "lm_val_loss_lstm", "tokens_per_s_transformer", "tokens_per_s_lstm",
                lab.HEADLINE):
        assert math.isfinite(quick.metrics[key])
    assert set(quick.figures) == set(quick.captions) >= {"recall", "attention", "positions", "lm", "attention_cost"}


def test_the_claims_the_notebook_states_hold(quick):
    m, longest = quick.metrics, max(lab.QUICK["recall_lengths"])
    # attention recalls at the longest quick length; the LSTM of the same size and steps stays near chance
    assert m[f"recall_accuracy_transformer_T{longest}"] > m[f"recall_accuracy_lstm_T{longest}"] + 0.5
    assert m[f"recall_accuracy_lstm_T{longest}"] < 2 * m["recall_chance"]
    assert m[lab.HEADLINE] == longest
    rows = quick.tables["recall"]
    for length in lab.QUICK["recall_lengths"]:  # same parameter count (within 3 %) and the same steps
        same = [r for r in rows if r["length"] == length]
        assert max(r["parameters"] for r in same) / min(r["parameters"] for r in same) < 1.03
        assert len({r["steps"] for r in same}) == 1
    # a head looks the pair up: far more weight on the queried key's pairs than their share of the positions
    best = max(quick.tables["attention"], key=lambda r: r["weight_on_match"])
    assert best["weight_on_match"] > 5 * best["share_of_positions"]
    # order needs positions
    assert m["positions_learned_accuracy"] > m["positions_none_accuracy"] + 0.4
    assert m["positions_sinusoidal_accuracy"] > m["positions_none_accuracy"]
    # both language models beat the uniform guess ln(vocab) and the unigram guess
    for model in ("transformer", "lstm"):
        assert m[f"lm_val_loss_{model}"] < quick.tables["lm"][0]["unigram_loss"] < m["lm_uniform_loss"]
    # the written-out attention's scores grow as T^2
    cost = quick.tables["attention_cost"]
    assert all(b["score_bytes"] == 4 * a["score_bytes"] for a, b in zip(cost, cost[1:]) if b["T"] == 2 * a["T"])
