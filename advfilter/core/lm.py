"""Summed log-probabilities of continuations under a causal LM, many rows in one pass."""
from __future__ import annotations

from typing import Sequence

import torch


def continuation_logprobs(model, rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> torch.Tensor:
    """log P(continuation | prefix) summed per ``(prefix ids, continuation ids)`` row.

    Rows are right-padded into one forward pass. Gradients flow unless the caller runs it
    under ``torch.no_grad`` (scoring does, LoRA training does not).
    """
    width = max(len(p) + len(c) for p, c in rows)
    ids = torch.full((len(rows), width), pad_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    target = torch.zeros((len(rows), width), dtype=torch.bool)  # the continuation's tokens
    for r, (prefix, continuation) in enumerate(rows):
        n = len(prefix) + len(continuation)
        ids[r, :n] = torch.tensor(prefix + continuation)
        mask[r, :n] = 1
        target[r, len(prefix):n] = True
    device = model.device
    ids = ids.to(device)
    logits = model(input_ids=ids, attention_mask=mask.to(device)).logits.float()
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(2, ids[:, 1:, None]).squeeze(2)
    return (logp * target[:, 1:].to(device)).sum(1)
