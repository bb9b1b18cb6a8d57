"""Text for character-level language models: a char vocabulary, the bundled corpora, and batching for
truncated backpropagation through time (TBPTT).

TBPTT (as in PyTorch's word_language_model example and Karpathy's char-rnn): the text is cut into B parallel
streams, one per batch row; consecutive batches continue each stream where the last one stopped, so a model can
carry its hidden state from one chunk of ``bptt`` characters to the next while gradients stop at chunk edges.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import torch

from esc_course.data.embedded import BUNDLED

CORPORA = {"english": "shakespeare.txt", "korean": "korean_poems.txt"}  # name -> file in bundled/


class CharVocab:
    """Characters <-> integer ids. ``CharVocab.from_text(text)``; ids follow the sorted characters."""

    def __init__(self, chars: Iterable[str]):
        chars = sorted(set(chars))
        if not chars:
            raise ValueError("a vocabulary needs at least one character, got none")
        if any(len(c) != 1 for c in chars):
            raise ValueError(f"vocabulary entries must be single characters, got {[c for c in chars if len(c) != 1]}")
        self.chars = "".join(chars)
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls(text)

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self.index

    def encode(self, text: str) -> torch.Tensor:
        """A string -> int64 ids (len(text),); characters not in the vocabulary raise ValueError."""
        missing = sorted(set(text) - self.index.keys())
        if missing:
            raise ValueError(f"text has {len(missing)} characters that are not in the vocabulary: "
                             f"{''.join(missing)!r}; the vocabulary has {len(self)}: {self.chars[:80]!r}...")
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor | Iterable[int]) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"ids must be in [0, {len(self)}), got {bad[:5]}")
        return "".join(self.chars[i] for i in ids)

    def __repr__(self) -> str:
        return f"CharVocab(size={len(self)}, chars={self.chars[:40]!r}{'...' if len(self) > 40 else ''})"


def load_text(path: str | Path) -> str:
    """A UTF-8 text file as a string (line endings normalised to \\n); a clear error if it cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {str(path)!r} does not exist (or is not a file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"text file {str(path)!r} is not UTF-8 ({err}); convert it, e.g. iconv -t UTF-8") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ValueError(f"text file {str(path)!r} is empty")
    return text


def corpus(name: str = "english") -> str:
    """A bundled corpus: 'english' (Shakespeare), 'korean' (public-domain poems and the national anthem) or
    'all' (both). Sources and licenses: esc_course/data/bundled/README.md."""
    if name == "all":
        return "\n\n".join(corpus(n) for n in CORPORA)
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; valid corpora: {', '.join([*CORPORA, 'all'])}")
    return load_text(BUNDLED / CORPORA[name])


def split_text(ids: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Contiguous split: the first part trains, the tail validates (a random split would leak: text repeats
    itself locally)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = len(ids) - max(2, int(round(len(ids) * val_fraction)))
    if cut < 2:
        raise ValueError(f"{len(ids)} ids are too few to split with val_fraction={val_fraction}")
    return ids[:cut], ids[cut:]


def unigram_loss(train_ids: torch.Tensor, eval_ids: torch.Tensor, vocab_size: int) -> float:
    """Cross-entropy (nats/char) on ``eval_ids`` of character frequencies counted on ``train_ids`` (add-one
    smoothed): the loss of a model with no memory at all, the bar a language model must clear."""
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1.0
    logp = (counts / counts.sum()).log()
    return float(-logp[eval_ids].mean())


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut ids (N,) into ``batch_size`` contiguous streams: (batch_size, N // batch_size); the rest is dropped."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D, got shape {tuple(ids.shape)}")
    per_stream = len(ids) // batch_size
    if per_stream < 2:
        raise ValueError(f"{len(ids)} ids give streams of {per_stream} for batch_size={batch_size}; each stream "
                         f"needs at least 2 (an input and its next character): use batch_size <= {len(ids) // 2}")
    return ids[: per_stream * batch_size].reshape(batch_size, per_stream)


class TBPTTLoader:
    """Chunks for truncated BPTT: ``(x, y)`` of shape (B, T) with y = x shifted by one character.

    Batch k holds characters [k*bptt, (k+1)*bptt) of every stream, in order and never shuffled, so row b of
    batch k+1 continues row b of batch k (carry the hidden state across; see CharLM(carry_state=True)).
    The last chunk is shorter when the stream length is not a multiple of ``bptt``.
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, bptt: int, device: torch.device | str | None = None):
        if isinstance(bptt, bool) or not isinstance(bptt, int) or bptt < 1:
            raise ValueError(f"bptt must be a positive integer (characters per chunk), got {bptt!r}")
        self.streams = batchify(ids, batch_size).to(device if device is not None else ids.device)
        self.bptt = bptt
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil((self.streams.shape[1] - 1) / self.bptt)

    def __iter__(self):
        usable = self.streams.shape[1] - 1  # the last character of a stream is only ever a target
        for start in range(0, usable, self.bptt):
            stop = min(start + self.bptt, usable)
            yield self.streams[:, start:stop], self.streams[:, start + 1:stop + 1]

    def __repr__(self) -> str:
        return f"TBPTTLoader(streams={tuple(self.streams.shape)}, bptt={self.bptt}, batches={len(self)})"
