"""All endings of a run as arrays, built once per run and cached in ``RUN_DIR/af/``.

Rows are laid out context by context: the gold ending first, then the candidate pool, so the
rows of context ``i`` are ``offsets[i]:offsets[i + 1]`` and pool index ``j`` (what an AF
assignment stores) is row ``offsets[i] + 1 + j``. Word ids, POS tags and LM features are
computed here once, never per round.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from generators.text import word_tokenize

log = logging.getLogger(__name__)

MAX_WORDS = 32  # ending and context words kept per row (endings are <= 25 words)
LM_COLUMNS = ["lm_logprob", "lm_uncond_logprob", "ending_tokens", "context_tokens"]


@dataclass
class Bank:
    """Arrays over all rows (endings) and contexts of a run."""

    context_ids: np.ndarray  # (C,) str
    offsets: np.ndarray  # (C + 1,) int64: rows of context i are offsets[i]:offsets[i+1]
    words: np.ndarray  # (R, MAX_WORDS) int32 ending word ids, 0 = padding
    ctx_words: np.ndarray  # (C, MAX_WORDS) int32 ids of the last words of ctx_a + ctx_b
    lm: np.ndarray  # (R, len(LM_COLUMNS)) float32
    vocab_size: int
    pos: np.ndarray | None = None  # (R, MAX_WORDS) int16 POS ids of ctx_b + ending
    pos_size: int = 0
    bert_ids: np.ndarray | None = None  # (R, L) int32 word pieces of [CLS] ctx [SEP] ending [SEP]
    bert_types: np.ndarray | None = None  # (R, L) int8 segment ids (1 = the ending)

    @property
    def pool_sizes(self) -> np.ndarray:
        return np.diff(self.offsets) - 1

    def row_context(self, rows: np.ndarray) -> np.ndarray:
        """The context index of each row."""
        return np.searchsorted(self.offsets, rows, side="right") - 1

    def save(self, path: Path) -> None:
        """Write the bank to one ``.npz`` file, atomically."""
        from advfilter.store import atomic_path

        arrays = {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays, vocab_size=self.vocab_size, pos_size=self.pos_size)

    @classmethod
    def load(cls, path: Path) -> "Bank":
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        return cls(**arrays | {"vocab_size": int(arrays["vocab_size"]),
                               "pos_size": int(arrays["pos_size"])})


def _ids(texts, vocab: dict[str, int], keep_last: bool = False) -> np.ndarray:
    out = np.zeros((len(texts), MAX_WORDS), dtype=np.int32)
    for i, text in enumerate(texts):
        ids = [vocab.setdefault(w, len(vocab) + 1) for w in word_tokenize(text.lower())]
        ids = ids[-MAX_WORDS:] if keep_last else ids[:MAX_WORDS]
        out[i, :len(ids)] = ids
    return out


def _contexts_in(shard_paths: list[Path]):
    """(context id, its rows with the gold first) for every context, shard by shard."""
    for path in tqdm(shard_paths, desc="reading candidates", disable=None):
        shard = pq.read_table(path, columns=["context_id", "ending", "is_gold", *LM_COLUMNS]).to_pandas()
        for cid, rows in shard.groupby("context_id", sort=False):
            yield cid, rows.sort_values("is_gold", ascending=False, kind="stable")


def read_texts(shard_paths: list[Path]) -> list[str]:
    """The ending texts in bank row order."""
    return [e for _, rows in _contexts_in(shard_paths) for e in rows["ending"].tolist()]


def build_bank(contexts: pd.DataFrame, shard_paths: list[Path]) -> Bank:
    """The bank of all shards, streamed one shard at a time; contexts in shard order."""
    vocab: dict[str, int] = {}
    context_ids, offsets, words, lm = [], [0], [], []
    for cid, rows in _contexts_in(shard_paths):
        context_ids.append(cid)
        offsets.append(offsets[-1] + len(rows))
        words.append(_ids(rows["ending"].tolist(), vocab))
        lm.append(rows[LM_COLUMNS].to_numpy(np.float32))
    ctx = contexts.set_index("id").loc[context_ids]
    ctx_words = _ids((ctx["ctx_a"] + " " + ctx["ctx_b"]).tolist(), vocab, keep_last=True)
    return Bank(np.array(context_ids), np.array(offsets, dtype=np.int64), np.concatenate(words),
                ctx_words, np.concatenate(lm), vocab_size=len(vocab) + 1)


def add_pos(bank: Bank, contexts: pd.DataFrame, texts: list[str], nlp) -> None:
    """POS tags (spaCy's fine-grained tags) of ``ctx_b + ending`` for every row."""
    ctx_b = contexts.set_index("id").loc[bank.context_ids, "ctx_b"].to_numpy()
    owner = bank.row_context(np.arange(len(texts)))
    tags: dict[str, int] = {}
    pos = np.zeros((len(texts), MAX_WORDS), dtype=np.int16)
    docs = nlp.pipe((f"{ctx_b[o]} {t}" for o, t in zip(owner, texts)), batch_size=512)
    for i, doc in enumerate(tqdm(docs, total=len(texts), desc="POS tagging", disable=None)):
        ids = [tags.setdefault(tok.tag_, len(tags) + 1) for tok in doc][:MAX_WORDS]
        pos[i, :len(ids)] = ids
    bank.pos, bank.pos_size = pos, len(tags) + 1


def add_bert_tokens(bank: Bank, contexts: pd.DataFrame, texts: list[str], tokenizer,
                    max_length: int) -> None:
    """Word-piece ids of ``[CLS] ctx_a ctx_b [SEP] ending [SEP]`` for every row (0-padded)."""
    ctx = contexts.set_index("id").loc[bank.context_ids]
    prompts = (ctx["ctx_a"] + " " + ctx["ctx_b"]).to_numpy()
    owner = bank.row_context(np.arange(len(texts)))
    ids = np.zeros((len(texts), max_length), dtype=np.int32)
    types = np.zeros((len(texts), max_length), dtype=np.int8)
    step = 4096
    for start in tqdm(range(0, len(texts), step), desc="word pieces", disable=None):
        end = min(start + step, len(texts))
        enc = tokenizer(list(prompts[owner[start:end]]), texts[start:end], truncation="only_first",
                        max_length=max_length, padding="max_length", return_token_type_ids=True)
        ids[start:end] = np.asarray(enc["input_ids"], dtype=np.int32)
        types[start:end] = np.asarray(enc["token_type_ids"], dtype=np.int8)
    bank.bert_ids, bank.bert_types = ids, types
