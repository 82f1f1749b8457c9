"""Log-probabilities of continuations under a causal LM.

``continuation_logprobs``: summed per (prefix, continuation) row, many rows in one pass (the hf
generator's LM features, LoRA training). ``Scorer``: multiple-choice items scored the way
lm-evaluation-harness scores HellaSwag (``advfilter evaluate``, the ``lm`` probe). Query:
``preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())``; choices:
``preprocess(ending)``; each choice scores the sum of log-probs of ``" " + choice`` given the
query. Tokenisation follows the harness: the context is encoded alone, the continuation is
what encoding context + continuation adds after it. Speed: the context of every item runs
once; its KV cache is repeated for the item's choices, and items are batched (contexts
left-padded, continuations right-padded).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
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


def preprocess(text: str) -> str:
    """lm-evaluation-harness's HellaSwag clean-up: WikiHow ``[title]`` markers and brackets."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


@dataclass(frozen=True)
class Doc:
    """One scored item: the query, its choices, the gold index and grouping fields."""

    query: str
    choices: tuple[str, ...]
    gold: int
    activity: str
    source: str
    split: str = ""
    ident: str = ""  # the item's id: its context id, HellaSwag's ind, or its line
    video: str = ""  # what it was filmed or written from: its source_id (else its id)


def to_doc(record: dict[str, Any], default_id: str = "") -> Doc:
    """A HellaSwag-format record as the harness asks it: ``label: ctx_a Ctx_b`` (the context
    alone where the record has no activity label) and its preprocessed endings."""
    ctx = record["ctx_a"] + " " + record["ctx_b"].capitalize()
    source_id = str(record.get("source_id", ""))
    source = source_id.split("~")[0] if "~" in source_id else ""  # "activitynet~v_x"; a bare id: none
    ident = str(record.get("context_id", record.get("ind", default_id)))
    label = record["activity_label"]  # an item without one is asked its context alone, not ": ctx"
    return Doc(preprocess(label + ": " + ctx if label else ctx),
               tuple(preprocess(e) for e in record["endings"]), int(record["label"]),
               record["activity_label"], source, str(record.get("split", "")), ident, source_id or ident)


class Scorer:
    """Log-likelihoods of continuations under a causal LM (``model`` in eval mode)."""

    def __init__(self, model, tokenizer) -> None:
        self.model, self.tok = model, tokenizer
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """The harness's split: trailing spaces move to the continuation; the continuation
        tokens are what encoding the whole adds after the context's own tokens."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self.tok.encode(context + continuation, add_special_tokens=False)
        ctx = self.tok.encode(context, add_special_tokens=False)
        return ctx, whole[len(ctx):]

    @torch.no_grad()
    def loglikelihoods(self, docs: Sequence[Doc]) -> list[np.ndarray]:
        """Per doc, the summed log-prob of each ``" " + choice`` given its query."""
        pairs = [[self.encode_pair(d.query, " " + c) for c in d.choices] for d in docs]
        contexts = [p[0][0] for p in pairs]
        device = self.model.device
        width = max(map(len, contexts))
        ids = torch.full((len(docs), width), self.pad)
        mask = torch.zeros((len(docs), width), dtype=torch.long)
        for i, ctx in enumerate(contexts):  # left padding: every context ends at the last column
            ids[i, width - len(ctx):] = torch.tensor(ctx)
            mask[i, width - len(ctx):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids.to(device), attention_mask=mask.to(device),
                         position_ids=positions.to(device), use_cache=True)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # predicts each first token
        k = [len(p) for p in pairs]
        owner = torch.repeat_interleave(torch.arange(len(docs)), torch.tensor(k))
        conts = [c for p in pairs for _, c in p]
        scores = torch.stack([first[o, c[0]] for o, c in zip(owner.tolist(), conts)]).cpu()
        rest = max(len(c) for c in conts) - 1
        if rest > 0:  # the other tokens: one pass over all choices, on the repeated cache
            cache = out.past_key_values
            cache.batch_select_indices(owner.to(device))  # row r gets its item's context cache
            tail = torch.full((len(conts), rest), self.pad)
            tail_mask = torch.zeros((len(conts), rest), dtype=torch.long)
            for r, c in enumerate(conts):
                tail[r, :len(c) - 1] = torch.tensor(c[:-1])
                tail_mask[r, :len(c) - 1] = 1
            lengths = mask.sum(1)[owner]
            pos = lengths[:, None] + torch.arange(rest)[None]
            logits = self.model(input_ids=tail.to(device),
                                attention_mask=torch.cat([mask[owner], tail_mask], 1).to(device),
                                position_ids=pos.to(device), past_key_values=cache).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            for r, c in enumerate(conts):
                if len(c) > 1:
                    scores[r] += logp[r, torch.arange(len(c) - 1), torch.tensor(c[1:])].sum()
        bounds = np.cumsum([0, *k])
        flat = scores.numpy().astype(np.float64)
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def score_all(self, docs: Sequence[Doc], batch_size: int,
                  on_batch: Callable[[int], None] = lambda _: None) -> list[np.ndarray]:
        """``loglikelihoods`` of every doc, ``batch_size`` docs a pass; ``on_batch(n)`` after each."""
        lls: list[np.ndarray] = []
        for batch in batches(docs, batch_size):
            lls += self.loglikelihoods(batch)
            on_batch(len(batch))
        return lls


def batches(docs: Sequence[Doc], size: int) -> Iterator[Sequence[Doc]]:
    """``docs`` in consecutive slices of ``size``."""
    for start in range(0, len(docs), size):
        yield docs[start:start + size]


def acc_norm_picks(docs: Sequence[Doc], lls: Sequence[np.ndarray]) -> np.ndarray:
    """Per doc, the choice with the highest log-likelihood per character (the harness's
    ``acc_norm`` pick: length alone does not decide)."""
    return np.array([int(np.argmax(ll / np.array([len(c) for c in d.choices], dtype=float)))
                     for d, ll in zip(docs, lls)])
