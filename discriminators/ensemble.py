"""The ensemble: the members' representations concatenated into a final MLP, trained jointly.

Not a registered name: the filter stage builds it from the chosen discriminators whenever
there is more than one. Each member keeps its own learning rate (a pretrained encoder wants
a smaller step than an embedding table); the mixing layers use ``filter.ensemble.lr``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from advfilter.core.settings import EnsembleConfig
from discriminators.bank import Bank, Batch
from discriminators.base import Discriminator
from discriminators.inputs import Input


class Ensemble(Discriminator):
    """Built from ``members``: (discriminator class, its config) pairs."""

    def __init__(self, bank: Bank, cfg: EnsembleConfig,
                 members: list[tuple[type[Discriminator], Any]]) -> None:
        super().__init__(bank, cfg)
        self.members = nn.ModuleList(cls(bank, member_cfg) for cls, member_cfg in members)
        self.dim = cfg.hidden_dim
        self.mix = nn.Sequential(nn.Linear(sum(m.dim for m in self.members), cfg.hidden_dim), nn.ReLU())
        self.build_head()

    def inputs(self) -> list[Input]:
        return list(dict.fromkeys(i for m in self.members for i in m.inputs()))

    def represent(self, batch: Batch) -> torch.Tensor:
        return self.mix(torch.cat([m.represent(batch) for m in self.members], dim=-1))

    def param_groups(self) -> list[dict[str, Any]]:
        own = [*self.mix.parameters(), *self.head.parameters()]
        return [g for m in self.members for g in m.param_groups()] + [{"params": own, "lr": self.cfg.lr}]
