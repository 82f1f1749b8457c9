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

    Uses the Gumbel-max trick (argmax of logits plus Gumbel noise), which samples the same
    distribution as ``torch.multinomial`` at a fraction of its cost on large batches.
    """
    filtered = filter_logits(logits / temperature, top_k, top_p)
    uniform = torch.rand(filtered.shape, generator=generator).clamp_(min=1e-20)
    return (filtered - torch.log(-torch.log(uniform))).argmax(dim=-1)
