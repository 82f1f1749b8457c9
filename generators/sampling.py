"""Top-k / nucleus (top-p) filtering of next-token logits, shared by the torch generators."""
from __future__ import annotations

import math

import torch


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Logits with everything outside the top ``k`` and outside the top-``p`` mass set to -inf.

    ``top_k=0`` and ``top_p=1.0`` turn each filter off. The most likely token always survives.
    """
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        drop = cumulative - torch.softmax(sorted_logits, dim=-1) >= top_p  # mass before this token
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), -math.inf)
    return logits


def draw(logits: torch.Tensor, temperature: float, top_k: int, top_p: float,
         generator: torch.Generator) -> torch.Tensor:
    """One token id per row, sampled from softmax(logits / temperature) after filtering.

    Inverse-CDF sampling: one uniform number per row, found in the row's cumulative
    probabilities. It draws the same distribution as ``torch.multinomial`` (or Gumbel noise
    over every token) at a fraction of their cost on large batches and vocabularies; tokens
    of probability 0 (filtered, or logits of -inf) are never drawn.
    """
    probs = torch.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
    cumulative = probs.cumsum(-1)
    uniform = torch.rand((probs.size(0), 1), generator=generator, dtype=cumulative.dtype)
    # the first token whose cumulative mass passes u * total: never one of probability 0
    return torch.searchsorted(cumulative, uniform * cumulative[:, -1:], right=True)[:, 0] \
        .clamp_max_(probs.size(-1) - 1)
