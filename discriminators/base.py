"""The discriminator interface, its registry, and the one training loop all of them share.

A discriminator scores one (context, ending) row at a time; it is trained as a
multiple-choice model: softmax cross-entropy over each context's options (the gold and its
assigned negatives), as SWAG's ensemble was. Each one owns its config section
(``filter.discriminator.<name>``: a pydantic model, unknown keys rejected) and declares the
inputs it reads (``needs``); adding one is a module, a ``@discriminators.register`` line and
a test.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from advfilter.core.models import autocast
from advfilter.core.progress import progress
from advfilter.core.registry import Registry
from discriminators.bank import Bank, Batch
from discriminators.inputs import Input

_SCORE_ROWS = 4096
_SORTED_ROWS = {"cpu": 64, "cuda": 512}  # rows per batch when sorted by length: CPUs like small ones


class DiscriminatorConfig(BaseModel):
    """Training settings every discriminator has; subclasses add their own sizes."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(4, ge=1)
    batch_size: int = Field(32, ge=1, description="contexts per step (each with all its options)")
    lr: float = Field(2e-3, gt=0)


class Discriminator(nn.Module):
    """Maps a batch of rows to representations (``represent``) and scores (``forward``).

    Subclasses set ``Config``, implement ``needs`` and ``represent``, set ``dim`` (the
    representation size) and call ``build_head`` at the end of ``__init__``.
    """

    Config: ClassVar[type[DiscriminatorConfig]] = DiscriminatorConfig
    dim: int

    def __init__(self, bank: Bank, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg

    @classmethod
    def needs(cls, cfg: Any) -> list[Input]:
        """The bank inputs this discriminator reads (built before the first round)."""
        raise NotImplementedError

    def inputs(self) -> list[Input]:
        return type(self).needs(self.cfg)

    def represent(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def row_lengths(self, bank: Bank, rows: np.ndarray) -> np.ndarray | None:
        """Per row, the length its cost grows with (word pieces of a transformer's input), so
        that ``score`` batches rows of one length together; None: no such length."""
        return None

    def build_head(self) -> None:
        self.head = nn.Linear(self.dim, 1)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.head(self.represent(batch)).squeeze(-1)

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimizer groups: all parameters at ``cfg.lr`` (the ensemble mixes its members')."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": self.cfg.lr}]


discriminators: Registry[type[Discriminator]] = Registry("discriminator")


def batches(n: int, batch_size: int, epochs: int, rng: np.random.Generator,
            steps: int | None = None) -> list[np.ndarray]:
    """Index batches over ``n`` examples: ``epochs`` shuffled passes, or exactly ``steps``
    batches taken from as many shuffled passes as they need."""
    out: list[np.ndarray] = []
    while n and len(out) < (steps or 0) or (steps is None and len(out) < epochs * -(-n // batch_size)):
        order = rng.permutation(n)
        out.extend(order[start:start + batch_size] for start in range(0, n, batch_size))
    return out[:steps] if steps else out


def fit(model: Discriminator, bank: Bank, options: np.ndarray, seed: int,
        device: torch.device | str = "cpu", steps: int | None = None, desc: str = "") -> float:
    """Train on ``options`` (contexts × k rows, the gold in column 0) for ``cfg.epochs``, or
    ``steps`` optimizer steps when given; returns the last loss. ``desc`` names the progress
    bar (none without it)."""
    device = torch.device(device)
    cfg = model.cfg
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.param_groups())
    target = torch.zeros(cfg.batch_size, dtype=torch.long, device=device)
    inputs = model.inputs()
    loss = torch.tensor(0.0)
    plan = batches(len(options), cfg.batch_size, cfg.epochs, rng, steps)
    for batch in progress(plan, desc=desc, leave=False) if desc else plan:
        rows = options[batch]
        with autocast(device):
            scores = model(bank.batch(inputs, rows.ravel(), device)).view(rows.shape)
        loss = nn.functional.cross_entropy(scores.float(), target[:len(rows)])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return float(loss.detach())


@torch.no_grad()
def score(model: Discriminator, bank: Bank, rows: np.ndarray) -> np.ndarray:
    """Scores of ``rows`` (any shape), in that shape, on the model's device; rows of similar
    ``row_lengths`` are batched together (less padding)."""
    device = next(model.parameters()).device
    inputs = model.inputs()
    flat = rows.ravel()
    lengths = model.row_lengths(bank, flat)
    order, size = ((np.arange(len(flat)), _SCORE_ROWS) if lengths is None else
                   (np.argsort(lengths, kind="stable"), _SORTED_ROWS.get(device.type, _SCORE_ROWS)))
    out = np.empty(len(flat), dtype=np.float32)
    for start in range(0, len(flat), size):
        at = order[start:start + size]
        with autocast(device):
            out[at] = model(bank.batch(inputs, flat[at], device)).float().cpu().numpy()
    return out.reshape(rows.shape)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over time (dim 1) of ``x`` (B, T, D) where ``mask`` (B, T) is True; 0 if none."""
    filled = x.masked_fill(~mask[..., None], -1e9).max(dim=1).values
    return torch.where(mask.any(1, keepdim=True), filled, torch.zeros_like(filled))
