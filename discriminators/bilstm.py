"""``bilstm``: a BiLSTM over the POS tags of the context's start phrase and the ending,
max-pooled over time: it sees syntax, not words."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from discriminators.bank import Bank
from discriminators.base import Discriminator, discriminators, masked_max


@discriminators.register("bilstm")
class POSBiLSTM(Discriminator):
    needs = frozenset({"pos"})

    def __init__(self, bank: Bank, cfg: Any) -> None:
        super().__init__(bank, cfg)
        self.embed = nn.Embedding(bank.pos_size, 32, padding_idx=0)
        self.lstm = nn.LSTM(32, cfg.hidden_dim, batch_first=True, bidirectional=True)
        self.dim = 2 * cfg.hidden_dim
        self.build_head()

    def represent(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        pos = batch["pos"]
        out, _ = self.lstm(self.embed(pos))
        return masked_max(out, pos > 0)
