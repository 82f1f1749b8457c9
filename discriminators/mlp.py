"""``mlp``: an MLP over the generator's LM features of the ending (SWAG's "LM features" model)."""
from __future__ import annotations


import numpy as np
import torch
from pydantic import Field
from torch import nn

from discriminators.bank import Bank, Batch
from discriminators.base import Discriminator, DiscriminatorConfig, discriminators
from discriminators.inputs import Input

LM = Input("lm")


class MLPConfig(DiscriminatorConfig):
    hidden_dim: int = Field(64, ge=1)


@discriminators.register("mlp")
class LMFeaturesMLP(Discriminator):
    """Inputs: log P(e|c), log P(e), their per-token means, their difference, lengths."""

    Config = MLPConfig

    @classmethod
    def needs(cls, cfg: MLPConfig) -> list[Input]:
        return [LM]

    def __init__(self, bank: Bank, cfg: MLPConfig) -> None:
        super().__init__(bank, cfg)
        feats = self._features(torch.from_numpy(np.array(bank.get(LM).rows["lm"])))
        # Standardise with the whole run's statistics, fixed at construction.
        self.register_buffer("mean", feats.mean(0))
        self.register_buffer("std", feats.std(0).clamp_min(1e-6))
        self.dim = cfg.hidden_dim
        self.net = nn.Sequential(nn.Linear(feats.size(1), cfg.hidden_dim), nn.ReLU(),
                                 nn.Linear(cfg.hidden_dim, cfg.hidden_dim), nn.ReLU())
        self.build_head()

    @staticmethod
    def _features(lm: torch.Tensor) -> torch.Tensor:
        cond, uncond, tokens, ctx_tokens = lm.unbind(-1)
        tokens = tokens.clamp_min(1)
        return torch.stack([cond, uncond, cond / tokens, uncond / tokens, cond - uncond,
                            tokens, ctx_tokens], dim=-1)

    def represent(self, batch: Batch) -> torch.Tensor:
        return self.net((self._features(batch[LM]["lm"]) - self.mean) / self.std)
