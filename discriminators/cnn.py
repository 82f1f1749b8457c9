"""``cnn``: a one-layer CNN over the ending's words, each marked by whether it occurs in the
context (SWAG's context-indicator embedding), max-pooled over several window sizes."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from discriminators.bank import Bank
from discriminators.base import Discriminator, discriminators, masked_max

WINDOWS = (2, 3, 4)


@discriminators.register("cnn")
class EndingCNN(Discriminator):
    needs = frozenset({"words", "ctx_words"})

    def __init__(self, bank: Bank, cfg: Any) -> None:
        super().__init__(bank, cfg)
        self.embed = nn.Embedding(bank.vocab_size, cfg.embed_dim, padding_idx=0)
        self.in_context = nn.Embedding(2, 8)
        self.convs = nn.ModuleList(nn.Conv1d(cfg.embed_dim + 8, cfg.hidden_dim, w, padding=w - 1)
                                   for w in WINDOWS)
        self.dim = cfg.hidden_dim * len(WINDOWS)
        self.build_head()

    def represent(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        words, ctx = batch["words"], batch["ctx_words"]
        seen = ((words[:, :, None] == ctx[:, None, :]) & (words[:, :, None] > 0)).any(-1)
        x = torch.cat([self.embed(words), self.in_context(seen.long())], dim=-1).transpose(1, 2)
        mask = words > 0
        pooled = []
        for conv, w in zip(self.convs, WINDOWS):
            h = torch.relu(conv(x)).transpose(1, 2)  # (B, T + w - 1, D)
            # output p covers words p-w+1..p: it counts if any of them is a real word
            window_mask = nn.functional.pad(mask, (w - 1, w - 1)).unfold(1, w, 1).any(-1)
            pooled.append(masked_max(h, window_mask))
        return torch.cat(pooled, dim=-1)
