"""Character vocabulary, bundled corpora and batching for truncated backpropagation through time."""

import math

import pytest
import torch

from esc_course.data.text import (
    CORPORA,
    CharVocab,
    TBPTTLoader,
    batchify,
    corpus,
    load_text,
    split_text,
    unigram_loss,
)


def test_vocab_round_trip_english_and_korean():
    text = "Hello, 세계! 별 헤는 밤\n"
    vocab = CharVocab.from_text(text)
    assert vocab.chars == "".join(sorted(set(text))) and len(vocab) == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == torch.long and ids.shape == (len(text),)
    assert vocab.decode(ids) == text and vocab.decode(ids.tolist()) == text
    assert "별" in vocab and "x" not in vocab


def test_vocab_errors_name_the_problem():
    vocab = CharVocab.from_text("abc")
    with pytest.raises(ValueError, match="not in the vocabulary: 'xz'"):
        vocab.encode("axbz")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 3\)"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match="at least one character"):
        CharVocab("")


def test_bundled_corpora():
    english, korean = corpus("english"), corpus("korean")
    assert english.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    assert len(english) == 31742  # the first 31,742 characters of Tiny Shakespeare (see bundled/README.md)
    assert "동해 물과 백두산이 마르고 닳도록" in korean and "죽는 날까지 하늘을 우러러" in korean
    both = corpus("all")
    assert english in both and korean in both
    with pytest.raises(ValueError, match="valid corpora: english, korean, all"):
        corpus("klingon")
    assert set(CORPORA) == {"english", "korean"}


def test_load_text_normalises_and_checks(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"one\r\ntwo\rthree\n")
    assert load_text(path) == "one\ntwo\nthree\n"
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty"):
        load_text(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="is not UTF-8"):
        load_text(tmp_path / "latin1.txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_text(tmp_path / "missing.txt")


def test_split_text_is_contiguous():
    ids = torch.arange(1000)
    train, val = split_text(ids, 0.1)
    assert len(val) == 100 and torch.equal(torch.cat([train, val]), ids)
    with pytest.raises(ValueError, match="val_fraction"):
        split_text(ids, 1.5)


def test_batchify_makes_contiguous_streams():
    streams = batchify(torch.arange(23), 4)
    assert streams.shape == (4, 5)
    assert streams[1].tolist() == [5, 6, 7, 8, 9]  # stream b holds ids [b*5, (b+1)*5)
    with pytest.raises(ValueError, match="use batch_size <= 11"):
        batchify(torch.arange(23), 20)


def test_tbptt_loader_continues_each_stream():
    ids = torch.arange(3 * 50)
    loader = TBPTTLoader(ids, batch_size=3, bptt=8)
    batches = list(loader)
    assert len(batches) == len(loader) == math.ceil(49 / 8)
    for x, y in batches:
        assert x.shape == y.shape and x.shape[0] == 3
        assert torch.equal(y, x + 1)  # the target is the next character
    assert batches[-1][0].shape[1] == 49 - 8 * 6  # the last chunk is shorter
    joined = torch.cat([x for x, _ in batches], dim=1)
    assert torch.equal(joined, batchify(ids, 3)[:, :-1])  # chunk k+1 continues chunk k, row by row
    assert list(loader)[0][0].tolist() == batches[0][0].tolist()  # never shuffled
    with pytest.raises(ValueError, match="bptt must be a positive integer"):
        TBPTTLoader(ids, 3, 0)


def test_unigram_loss_closed_form():
    train = torch.tensor([0, 0, 0, 1])  # counts 3, 1 (+1 smoothing each over 3 symbols): 4/7, 2/7, 1/7
    val = torch.tensor([0, 1, 2])
    expected = -(math.log(4 / 7) + math.log(2 / 7) + math.log(1 / 7)) / 3
    assert unigram_loss(train, val, 3) == pytest.approx(expected)
