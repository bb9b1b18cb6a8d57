"""Recurrent models: shapes and NaNs, parameter budgets, hidden-state gradients, the char LM's state and sampling."""

import pytest
import torch

from esc_course.data.text import CharVocab, TBPTTLoader
from esc_course.models import count_parameters
from esc_course.models.rnn import (
    CELLS,
    CharLM,
    SequenceClassifier,
    SequenceRegressor,
    get_cell,
    hidden_size_for_budget,
    hidden_state_gradients,
    per_step_cross_entropy,
    recurrent_layer,
    recurrent_parameters,
)
from esc_course.scratch.rnn import get_cell as scratch_cell
from esc_course.train import fit
from labs.week07_rnn import torch_threads


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):  # tiny recurrent steps: one thread is fastest and immune to busy machines
        yield


@pytest.mark.parametrize("cell", list(CELLS))
def test_sequence_models_shapes_and_no_nans(cell):
    torch.manual_seed(0)
    x = torch.randn(4, 9, 3)
    reg = SequenceRegressor(3, 8, 2, cell=cell, num_layers=2, dropout=0.1)
    clf = SequenceClassifier(3, 8, 5, cell=cell)
    per_step = SequenceClassifier(3, 8, 5, cell=cell, per_step=True)
    for model, shape in ((reg, (4, 2)), (clf, (4, 5)), (per_step, (4, 9, 5))):
        out = model(x)
        assert out.shape == shape and torch.isfinite(out).all()
    with pytest.raises(ValueError, match=r"expects x of shape \(B, T, 3\)"):
        clf(torch.randn(4, 3))


@pytest.mark.parametrize("cell", list(CELLS))
def test_char_lm_shapes_and_no_nans(cell):
    vocab = CharVocab.from_text("abcdefg 가나다")
    lm = CharLM(vocab, embed_dim=6, hidden_size=10, num_layers=2, cell=cell, dropout=0.1)
    out = lm(torch.randint(0, len(vocab), (3, 7)))
    assert out.shape == (3, 7, len(vocab)) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="int64 ids of shape"):
        lm(torch.randn(3, 7))


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", list(CELLS))
def test_parameter_formula_matches_the_modules(cell, layers):
    layer = recurrent_layer(cell, 5, 11, num_layers=layers)
    assert recurrent_parameters(cell, 5, 11, layers) == count_parameters(layer)


def test_budget_hidden_sizes_give_matching_parameter_counts():
    budget = 4700
    counts = {}
    for cell in CELLS:
        h = hidden_size_for_budget(cell, 2, 1, budget)
        counts[cell] = count_parameters(SequenceRegressor(2, h, cell=cell))
        neighbours = [count_parameters(SequenceRegressor(2, k, cell=cell)) for k in (h - 1, h + 1)]
        assert all(abs(n - budget) >= abs(counts[cell] - budget) for n in neighbours)  # the closest one
    assert max(counts.values()) / min(counts.values()) < 1.03
    assert all(abs(c - budget) / budget < 0.03 for c in counts.values())


def test_forget_bias_shifts_only_the_lstm_forget_gate():
    torch.manual_seed(0)
    plain = recurrent_layer("lstm", 3, 4)
    torch.manual_seed(0)
    biased = recurrent_layer("lstm", 3, 4, forget_bias=2.0)
    diff = biased.bias_ih_l0 - plain.bias_ih_l0
    assert torch.allclose(diff[4:8], torch.full((4,), 2.0)) and torch.all(diff[:4] == 0) and torch.all(diff[8:] == 0)
    assert torch.equal(biased.bias_hh_l0, plain.bias_hh_l0)


def test_unknown_cell_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid cells: rnn, lstm, gru"):
        get_cell("lstmm")
    with pytest.raises(ValueError, match="valid cells"):
        SequenceRegressor(2, 4, cell="transformer")


@pytest.mark.parametrize("cell", list(CELLS))
def test_hidden_state_gradients_match_an_unrolled_scratch_cell(cell):
    torch.manual_seed(1)
    model = SequenceRegressor(2, 6, cell=cell).double()
    x, y = torch.randn(5, 12, 2, dtype=torch.double), torch.randn(5, 1, dtype=torch.double)
    norms = hidden_state_gradients(model, x, y, torch.nn.functional.mse_loss)
    assert norms.shape == (12,) and all(p.grad is None for p in model.parameters())

    mine = scratch_cell(cell)(2, 6).double()
    mine.load_state_dict({k.removesuffix("_l0"): v for k, v in model.rnn.state_dict().items()})
    state, hs = None, []
    for t in range(12):
        state = mine(x[:, t], state)
        h = state[0] if isinstance(state, tuple) else state
        h.retain_grad()
        hs.append(h)
    torch.nn.functional.mse_loss(model.head(hs[-1]), y).backward()
    expected = torch.stack([h.grad.norm(dim=1).mean() for h in hs])
    torch.testing.assert_close(norms, expected)


def test_vanilla_rnn_gradient_vanishes_while_lstm_keeps_it():
    torch.manual_seed(0)
    x, y = torch.rand(64, 60, 2), torch.rand(64, 1)
    ratio = {}
    for cell, kw in (("rnn", {}), ("lstm", {"forget_bias": 3.0})):
        norms = hidden_state_gradients(SequenceRegressor(2, 32, cell=cell, **kw), x, y, torch.nn.functional.mse_loss)
        ratio[cell] = float(norms[0] / norms[-1])
    assert ratio["rnn"] < 1e-6 and ratio["lstm"] > 1e-3


def test_char_lm_carried_state_equals_one_long_pass():
    torch.manual_seed(0)
    vocab = CharVocab.from_text("abcd")
    lm = CharLM(vocab, embed_dim=4, hidden_size=8, cell="lstm", carry_state=True).eval()
    ids = torch.randint(0, 4, (2, 10))
    with torch.no_grad():
        whole, _ = lm.step(ids)
        first, second = lm(ids[:, :6]), lm(ids[:, 6:])  # the state flows from the first chunk into the second
        torch.testing.assert_close(torch.cat([first, second], 1), whole)
        lm.eval()  # switching mode starts a new stream
        assert not torch.allclose(lm(ids[:, 6:]), whole[:, 6:])
        lm(ids[:, :6])
        assert lm(ids[:1, 6:]).shape == (1, 4, 4)  # a new batch size also starts from zeros
        lm.reset_state()
        torch.testing.assert_close(lm(ids[:, :6]), whole[:, :6])


def test_char_lm_sample():
    torch.manual_seed(0)
    vocab = CharVocab.from_text("hello world")
    lm = CharLM(vocab, embed_dim=4, hidden_size=8).train()
    text = lm.sample("he", 20, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert len(text) == 22 and text.startswith("he") and set(text) <= set(vocab.chars)
    assert lm.training  # the mode is restored
    again = lm.sample("he", 20, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert again == text
    assert lm.sample("he", 15, temperature=0) == lm.sample("he", 15, temperature=0)
    assert lm.sample("wo", 0) == "wo"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        lm.sample("hi!", 5)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        lm.sample("he", 5, temperature=-1)
    with pytest.raises(ValueError, match="prompt must hold"):
        lm.sample("", 5)


def test_char_lm_learns_a_repeating_text_with_tbptt():
    torch.manual_seed(0)
    text = "the cat sat on the mat. " * 40
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    lm = CharLM(vocab, embed_dim=8, hidden_size=32, carry_state=True)
    history = fit(lm, TBPTTLoader(ids, 4, 20), loss_fn=per_step_cross_entropy, epochs=15,
                  optimizer=torch.optim.Adam(lm.parameters(), lr=0.02), progress=False)
    losses = history["train_loss"]
    assert losses[-1] < 0.25 * losses[0]
    assert history["train_accuracy"][-1] > 0.8
    assert lm.sample("the cat ", 15, temperature=0) == "the cat sat on the mat."


def test_per_step_cross_entropy_flattens_steps():
    logits, target = torch.randn(3, 5, 7), torch.randint(0, 7, (3, 5))
    expected = torch.nn.functional.cross_entropy(logits.reshape(15, 7), target.reshape(15))
    torch.testing.assert_close(per_step_cross_entropy(logits, target), expected)


def test_charlm_from_a_number_of_ids_trains_but_does_not_sample():
    from esc_course.models.rnn import CharLM

    model = CharLM(12, embed_dim=4, hidden_size=6)
    assert model(torch.randint(0, 12, (2, 5))).shape == (2, 5, 12)
    with pytest.raises(ValueError, match="cannot sample text"):
        model.sample("a", 3)
