"""The discriminator interface, its registry, and the one training loop all of them share.

A discriminator scores one (context, ending) row at a time; it is trained as a
multiple-choice model: softmax cross-entropy over each context's options (the gold and its
assigned negatives), as SWAG's ensemble was.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from advfilter.registry import Registry
from discriminators.bank import Bank

_SCORE_ROWS = 4096


class Discriminator(nn.Module):
    """Maps a batch of rows to representations (``represent``) and scores (``forward``).

    Subclasses set ``dim`` (the representation size) and ``needs`` (the bank arrays they read).
    """

    dim: int
    needs: frozenset[str] = frozenset()

    def __init__(self, bank: Bank, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.lr = cfg.lr  # the encoder overrides it: pretrained weights want a smaller step

    def represent(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def build_head(self) -> None:
        """Call at the end of ``__init__``, once ``dim`` is known."""
        self.head = nn.Linear(self.dim, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.represent(batch)).squeeze(-1)


discriminators: Registry[type[Discriminator]] = Registry("discriminator")


def make_batch(bank: Bank, rows: np.ndarray, needs: frozenset[str]) -> dict[str, torch.Tensor]:
    """Tensors for ``rows``: only the bank arrays a model ``needs``."""
    batch: dict[str, torch.Tensor] = {}
    if "words" in needs:
        batch["words"] = torch.from_numpy(bank.words[rows]).long()
    if "ctx_words" in needs:
        batch["ctx_words"] = torch.from_numpy(bank.ctx_words[bank.row_context(rows)]).long()
    if "lm" in needs:
        batch["lm"] = torch.from_numpy(bank.lm[rows])
    if "pos" in needs:
        batch["pos"] = torch.from_numpy(bank.pos[rows]).long()
    if "bert" in needs:
        batch["bert_ids"] = torch.from_numpy(bank.bert_ids[rows]).long()
        batch["bert_types"] = torch.from_numpy(bank.bert_types[rows]).long()
    return batch


def fit(model: Discriminator, bank: Bank, options: np.ndarray, seed: int) -> float:
    """Train on ``options`` (contexts × k rows, the gold in column 0); returns the last loss."""
    cfg = model.cfg
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=model.lr)
    target = torch.zeros(cfg.batch_size, dtype=torch.long)
    loss = torch.tensor(0.0)
    model.train()
    for _ in range(cfg.epochs):
        order = rng.permutation(len(options))
        for start in range(0, len(order), cfg.batch_size):
            rows = options[order[start:start + cfg.batch_size]]
            scores = model(make_batch(bank, rows.ravel(), model.needs)).view(rows.shape)
            loss = nn.functional.cross_entropy(scores, target[:len(rows)])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return float(loss.detach())


@torch.no_grad()
def score(model: Discriminator, bank: Bank, rows: np.ndarray) -> np.ndarray:
    """Scores of ``rows`` (any shape), in that shape."""
    flat = rows.ravel()
    out = np.empty(len(flat), dtype=np.float32)
    for start in range(0, len(flat), _SCORE_ROWS):
        chunk = flat[start:start + _SCORE_ROWS]
        out[start:start + len(chunk)] = model(make_batch(bank, chunk, model.needs)).numpy()
    return out.reshape(rows.shape)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over time (dim 1) of ``x`` (B, T, D) where ``mask`` (B, T) is True; 0 if none."""
    filled = x.masked_fill(~mask[..., None], -1e9).max(dim=1).values
    return torch.where(mask.any(1, keepdim=True), filled, torch.zeros_like(filled))
