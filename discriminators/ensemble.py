"""``ensemble``: the members' representations concatenated into a final MLP, trained jointly."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from discriminators.bank import Bank
from discriminators.base import Discriminator, discriminators


@discriminators.register("ensemble")
class Ensemble(Discriminator):
    """Built with ``members``: the names of the discriminators it joins."""

    def __init__(self, bank: Bank, cfg: Any, members: list[str]) -> None:
        super().__init__(bank, cfg)
        self.members = nn.ModuleList(discriminators.get(m)(bank, cfg) for m in members)
        self.needs = frozenset().union(*(m.needs for m in self.members))
        self.dim = cfg.hidden_dim
        self.mix = nn.Sequential(nn.Linear(sum(m.dim for m in self.members), cfg.hidden_dim), nn.ReLU())
        self.build_head()

    def represent(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.mix(torch.cat([m.represent(batch) for m in self.members], dim=-1))
