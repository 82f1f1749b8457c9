"""Zero-shot multiple-choice scoring of a causal LM, the way lm-evaluation-harness scores
HellaSwag.

Query: ``preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())``; choices:
``preprocess(ending)``; each choice scores the sum of log-probs of ``" " + choice`` given the
query. ``acc`` takes the argmax of the sums, ``acc_norm`` of the sums divided by the choice's
length in characters. Tokenisation follows the harness: the context is encoded alone, the
continuation is what encoding context + continuation adds after it.

Speed: the context of every item runs once; its KV cache is repeated for the item's choices,
and items are batched (contexts left-padded, continuations right-padded).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from advfilter.lm.config import EvaluateConfig
from advfilter.core.errors import InputError, RunError
from advfilter.core.layout import items
from advfilter.core.models import load_causal_lm
from advfilter.core.store import RunStore
from advfilter.sources.base import iter_json_lines


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
    ctx = record["ctx_a"] + " " + record["ctx_b"].capitalize()
    source_id = str(record.get("source_id", ""))
    source = source_id.split("~")[0] if "~" in source_id else ""  # "activitynet~v_x"; a bare id: none
    ident = str(record.get("context_id", record.get("ind", default_id)))
    label = record["activity_label"]  # an item without one is asked its context alone, not ": ctx"
    return Doc(preprocess(label + ": " + ctx if label else ctx),
               tuple(preprocess(e) for e in record["endings"]), int(record["label"]),
               record["activity_label"], source, str(record.get("split", "")), ident, source_id or ident)


def read_docs(path: Path, split: str | None = None) -> list[Doc]:
    """HellaSwag-format JSONL records (optionally only ``split``) as Docs; bad lines → InputError."""
    docs = []
    for lineno, record in iter_json_lines(path):  # unreadable file, bad JSON: InputError
        try:
            docs.append(to_doc(record, f"line {lineno}"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(path, f"line {lineno}", f"not a HellaSwag record: {exc!r}") from None
    if split is not None:
        docs = [d for d in docs if d.split == split]
    if not docs:
        raise InputError(path, None, f"no items{f' in split {split!r}' if split else ''}")
    return docs


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


def batches(docs: Sequence[Doc], size: int) -> Iterator[Sequence[Doc]]:
    for start in range(0, len(docs), size):
        yield docs[start:start + size]


def bootstrap_stderr(correct: np.ndarray, iterations: int = 1000, seed: int = 0) -> float:
    """Standard deviation of the mean of ``correct`` over bootstrap resamples."""
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, len(correct), (iterations, len(correct)))].mean(1)
    return float(means.std(ddof=1))


def summarize(docs: Sequence[Doc], lls: Sequence[np.ndarray]) -> dict[str, Any]:
    """acc, acc_norm with bootstrap standard errors, breakdowns and chosen-position counts."""
    pick = np.array([int(np.argmax(ll)) for ll in lls])
    pick_norm = np.array([int(np.argmax(ll / np.array([len(c) for c in d.choices], dtype=float)))
                          for d, ll in zip(docs, lls)])
    gold = np.array([d.gold for d in docs])
    acc, acc_norm = (pick == gold).astype(float), (pick_norm == gold).astype(float)
    groups: dict[str, dict[str, list[int]]] = {"activity": defaultdict(list), "source": defaultdict(list)}
    for i, d in enumerate(docs):
        groups["activity"][d.activity].append(i)
        groups["source"][d.source].append(i)
    k = max(len(d.choices) for d in docs)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (gold, pick_norm), 1)
    return {
        "n": len(docs), "acc": float(acc.mean()), "acc_norm": float(acc_norm.mean()),
        "acc_stderr": bootstrap_stderr(acc), "acc_norm_stderr": bootstrap_stderr(acc_norm),
        "by": {name: {key: {"n": len(ix), "acc": float(acc[ix].mean()), "acc_norm": float(acc_norm[ix].mean())}
                      for key, ix in sorted(g.items())} for name, g in groups.items()},
        "confusion_gold_by_chosen_norm": confusion.tolist(),
    }


def run_docs(run: RunStore, split: str | None) -> list[Doc]:
    """The last round's items of a run (only ``split``'s when named) as Docs."""
    docs = [to_doc(r) for r in items(run, None, split)]
    if not docs:
        raise RunError(f"{run.root}: no items{f' in split {split!r}' if split else ''}")
    return docs


def evaluate(cfg: EvaluateConfig, docs: Sequence[Doc], data: str,
             on_batch: Callable[[int], None] = lambda _: None) -> dict[str, Any]:
    """The ``evaluate`` recipe: score ``docs`` (read from ``data``, a file or a run) with the
    configured model; returns the results (config included). ``on_batch(n)`` after each batch."""
    model, tok = load_causal_lm(cfg.model, adapter=cfg.adapter, dtype=cfg.dtype, device=cfg.device)
    scorer = Scorer(model.eval(), tok)
    lls: list[np.ndarray] = []
    for batch in batches(docs, cfg.batch_size):
        lls += scorer.loglikelihoods(batch)
        on_batch(len(batch))
    return {"model": cfg.model, "adapter": cfg.adapter, "data": data, "split": cfg.split,
            "config": cfg.model_dump(), **summarize(docs, lls)}
