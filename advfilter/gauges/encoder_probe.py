"""The ``encoder`` probe: a pretrained encoder fine-tuned as a multiple-choice cross-encoder.

Each option is ``[CLS] ctx_a ctx_b [SEP] ending [SEP]``; a linear head scores the [CLS]
state; softmax cross-entropy over an item's options; AdamW with a linearly decaying step.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from advfilter.core.progress import progress

from advfilter.core.settings import EncoderProbeConfig
from advfilter.core.models import autocast, load_encoder, load_tokenizer, resolve_device, tokenize_pairs


class _CrossEncoder(torch.nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.encoder = load_encoder(name)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)

    def forward(self, enc: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.encoder(**enc).last_hidden_state[:, 0]).squeeze(-1)


def _scores(model: _CrossEncoder, tok: Any, items: Sequence[dict[str, Any]], max_length: int,
            device: torch.device) -> torch.Tensor:
    """Scores (items × options) of a batch of items with the same number of endings."""
    contexts = [f"{it['ctx_a']} {it['ctx_b']}".strip() for it in items for _ in it["endings"]]
    endings = [e for it in items for e in it["endings"]]
    enc = tokenize_pairs(tok, contexts, endings, max_length, padding=True, return_tensors="pt").to(device)
    with autocast(device):
        return model(dict(enc)).float().view(len(items), -1)


def train_and_pick(train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]],
                   cfg: EncoderProbeConfig, device: str, seed: int) -> np.ndarray:
    """Fine-tune on ``train``; the chosen ending of each item of ``test``, in order (the
    caller samples both: ``probe.sample``)."""
    rng = np.random.default_rng(seed)
    dev = resolve_device(device)
    torch.manual_seed(seed)
    tok = load_tokenizer(cfg.model)
    model = _CrossEncoder(cfg.model).to(dev)
    steps = cfg.epochs * -(-len(train) // cfg.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / max(steps, 1))
    bar = progress(total=steps, desc=f"encoder probe ({cfg.model})")
    model.train()
    for _ in range(cfg.epochs):
        order = rng.permutation(len(train))
        for start in range(0, len(order), cfg.batch_size):
            batch = [train[i] for i in order[start:start + cfg.batch_size]]
            scores = _scores(model, tok, batch, cfg.max_length, dev)
            loss = torch.nn.functional.cross_entropy(scores, torch.tensor([int(it["label"]) for it in batch],
                                                                          device=dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    bar.close()
    model.eval()
    picks = []
    with torch.no_grad():
        for start in range(0, len(test), cfg.batch_size * 4):
            picks += _scores(model, tok, test[start:start + cfg.batch_size * 4], cfg.max_length,
                             dev).argmax(1).tolist()
    return np.array(picks)
