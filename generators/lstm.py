"""A word-level LSTM language model trained on the corpus itself (SWAG's generator).

Training sequences are ``</s> ctx_a </s> ctx_b ending </s>``, so the model learns to continue
a subject given the previous sentence; ``</s>`` is both separator and end of sentence.
Sampling encodes every context once and draws all its endings from the repeated state. With
``lstm.keep_fluent`` < 1 it draws more endings than asked and returns the most probable per
token (the fluency filter): a small LM's word salad goes, its fluent endings stay. With
``lstm.topic_bias`` > 0 each content word of the context (not a stop word) gets that much added
to its logit while sampling (a cache LM's trick): the endings stay on the context's topic
instead of drifting to the corpus's most frequent scenes.
"""
from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

from advfilter.core.progress import progress
from advfilter.core.settings import Strict
from advfilter.core.text import content_words, detokenize, word_tokenize
from generators.base import Context, Generator, generators
from generators.sampling import draw

log = logging.getLogger(__name__)

PAD, UNK, END = 0, 1, 2
SPECIALS = ["<pad>", "<unk>", "</s>"]
_SCORE_ROWS = 512  # endings scored per forward pass (bounds memory: rows × tokens × vocab)


class LSTMLM(nn.Module):
    """Embedding → LSTM → projection to the vocabulary."""

    def __init__(self, vocab: int, embed_dim: int, hidden_dim: int, layers: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim, vocab)

    def forward(self, ids: torch.Tensor, state=None):
        out, state = self.lstm(self.drop(self.embed(ids)), state)
        return self.head(self.drop(out)), state

    def encode(self, prefixes: list[list[int]]):
        """LSTM state after each (variable-length) prefix, and the next-token logits."""
        lengths = torch.tensor([len(p) for p in prefixes])
        ids = pad_sequence([torch.tensor(p) for p in prefixes], batch_first=True, padding_value=PAD)
        packed = pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        _, (h, c) = self.lstm(packed)
        return (h, c), self.head(h[-1])


class LSTMConfig(Strict):
    """The word-level LSTM LM trained on the corpus itself."""

    embed_dim: int = Field(128, ge=1)
    hidden_dim: int = Field(256, ge=1)
    layers: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    max_epochs: int = Field(15, ge=1)
    patience: int = Field(2, ge=1, description="epochs without held-out improvement before stopping")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(3e-3, gt=0)
    min_count: int = Field(1, ge=1, description="rarer words become <unk> (never sampled)")
    max_len: int = Field(96, ge=8, description="tokens per training sequence")
    sample_batch: int = Field(32, ge=1, description="contexts sampled together")
    keep_fluent: float = Field(0.5, gt=0, le=1, description=(
        "fluency filter: n / keep_fluent endings are drawn per request and the n most probable "
        "per token (the LSTM's own log-probability) are returned; 1.0 = off"))
    topic_bias: float = Field(2.0, ge=0, description=(
        "added to the logit of each content word of the context (any case; stop words excepted) "
        "while sampling, so endings stay on its topic; the fluency filter and the LM features use "
        "the unbiased LM; 0 = off"))


def length_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's batches of sequence indices: sequences of about one length together (little
    padding to compute), ties broken at random, the batches in random order."""
    order = rng.permutation(len(lengths))
    order = order[np.argsort(np.asarray(lengths)[order], kind="stable")]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@generators.register("lstm")
class LSTMGenerator(Generator):
    """The ``lstm`` generator; ``generate.lstm`` sizes it, ``generate.sampling`` controls sampling."""

    Config = LSTMConfig

    def __init__(self, cfg: Any, name_or_path: str = "") -> None:
        super().__init__(cfg, name_or_path)
        self.vocab: list[str] = []
        self.index: dict[str, int] = {}
        self.model: LSTMLM | None = None

    # --- data ---------------------------------------------------------------------------
    def _ids(self, text: str) -> list[int]:
        return [self.index.get(token, UNK) for token in word_tokenize(text)]

    def _prefix(self, context: Context | None) -> list[int]:
        if context is None:  # unconditional: the start of a sentence
            return [END]
        return [END, *self._ids(context.ctx_a), END, *self._ids(context.ctx_b)]

    def _topic(self, contexts: Sequence[Context]) -> torch.Tensor:
        """Per context, ``topic_bias`` on the vocabulary's forms of its content words, else 0."""
        bias = torch.zeros(len(contexts), len(self.vocab))
        if self.settings.topic_bias:
            forms: dict[str, list[int]] = {}
            for i, word in enumerate(self.vocab):
                forms.setdefault(word.lower(), []).append(i)
            for row, x in enumerate(contexts):
                ids = [i for w in content_words(f"{x.ctx_a} {x.ctx_b}") for i in forms.get(w, ())]
                bias[row, ids] = self.settings.topic_bias
        return bias

    def _sequence(self, context: Context) -> list[int]:
        return (self._prefix(context) + self._ids(context.ending) + [END])[: self.settings.max_len]

    def _build_vocab(self, contexts: Sequence[Context]) -> None:
        counts = Counter(t for c in contexts for part in (c.ctx_a, c.ctx_b, c.ending)
                         for t in word_tokenize(part))
        words = sorted(w for w, n in counts.items() if n >= self.settings.min_count)
        self.vocab = SPECIALS + words
        self.index = {w: i for i, w in enumerate(self.vocab)}

    def _new_model(self) -> LSTMLM:
        c = self.settings
        return LSTMLM(len(self.vocab), c.embed_dim, c.hidden_dim, c.layers, c.dropout)

    # --- training -----------------------------------------------------------------------
    def _loss(self, batch: list[list[int]]) -> tuple[torch.Tensor, int]:
        ids = pad_sequence([torch.tensor(s) for s in batch], batch_first=True, padding_value=PAD)
        logits, _ = self.model(ids[:, :-1])
        targets = ids[:, 1:]
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                           ignore_index=PAD, reduction="sum")
        return loss, int((targets != PAD).sum())

    @torch.no_grad()
    def _perplexity(self, sequences: list[list[int]]) -> float:
        self.model.eval()
        total, tokens = 0.0, 0
        for i in range(0, len(sequences), self.settings.batch_size):
            loss, n = self._loss(sequences[i:i + self.settings.batch_size])
            total, tokens = total + float(loss), tokens + n
        return math.exp(total / max(tokens, 1))

    def fit(self, train: Sequence[Context], valid: Sequence[Context], seed: int) -> dict[str, Any]:
        """Train with Adam until held-out perplexity stops improving (``patience`` epochs)."""
        c = self.settings
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        self._build_vocab(train)
        self.model = self._new_model()
        train_seqs = [self._sequence(x) for x in train]
        if not valid:
            log.warning("no held-out contexts: early stopping watches the training perplexity")
        valid_seqs = [self._sequence(x) for x in (valid or train)]
        opt = torch.optim.Adam(self.model.parameters(), lr=c.lr)
        best, best_state, stale, history = math.inf, None, 0, []
        bar = progress(total=c.max_epochs, desc="lstm epochs", unit="epoch", every=0)
        for epoch in range(c.max_epochs):
            self.model.train()
            for batch in length_batches([len(q) for q in train_seqs], c.batch_size, rng):
                loss, n = self._loss([train_seqs[j] for j in batch])
                opt.zero_grad()
                (loss / n).backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                opt.step()
            ppl = self._perplexity(valid_seqs)
            history.append(round(ppl, 3))
            log.info("lstm epoch %d: held-out perplexity %.2f", epoch + 1, ppl)
            bar.set_postfix_str(f"held-out perplexity {ppl:.2f}")
            bar.update(1)
            if ppl < best:
                best, stale = ppl, 0
                best_state = {k: v.clone() for k, v in self.model.state_dict().items()}
            else:
                stale += 1
                if stale >= c.patience:
                    break
        bar.close()
        self.model.load_state_dict(best_state)
        self.model.eval()
        return {"vocab": len(self.vocab), "epochs": len(history), "valid_ppl": history,
                "best_valid_ppl": round(best, 3)}

    # --- persistence --------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        c = self.settings
        dims = dict(embed_dim=c.embed_dim, hidden_dim=c.hidden_dim, layers=c.layers, dropout=c.dropout)
        (directory / "lstm.json").write_text(json.dumps({"vocab": self.vocab, "dims": dims}))
        torch.save(self.model.state_dict(), directory / "model.pt")

    @classmethod
    def load(cls, directory: Path, cfg: Any, name_or_path: str = "") -> "LSTMGenerator":
        meta = json.loads((directory / "lstm.json").read_text())
        gen = cls(cfg, name_or_path)
        gen.vocab = meta["vocab"]
        gen.index = {w: i for i, w in enumerate(gen.vocab)}
        gen.model = LSTMLM(len(gen.vocab), **meta["dims"])
        gen.model.load_state_dict(torch.load(directory / "model.pt", weights_only=True))
        gen.model.eval()
        return gen

    # --- sampling and scoring -----------------------------------------------------------
    @torch.no_grad()
    def sample(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[str]]:
        """``n`` endings per context; an ending not finished within ``max_new_tokens`` is "".

        With ``keep_fluent`` < 1, ``ceil(n / keep_fluent)`` are drawn and the ``n`` of highest
        mean log-probability per token (unfinished ones last) are kept, in drawing order.
        """
        rng = torch.Generator().manual_seed(seed)
        draws = math.ceil(n / self.settings.keep_fluent)
        out: list[list[str]] = []
        step = self.settings.sample_batch
        for i in range(0, len(contexts), step):
            texts, fluency = self._sample_batch(contexts[i:i + step], draws, rng)
            for j in range(0, len(texts), draws):
                best = np.sort(np.argsort(-fluency[j:j + draws], kind="stable")[:n])
                out.append([texts[j + k] for k in best])
        return out

    def _sample_batch(self, contexts: Sequence[Context], n: int,
                      rng: torch.Generator) -> tuple[list[str], np.ndarray]:
        """``n`` endings per context, flat, with each one's mean log-probability per token
        (-inf where unfinished)."""
        s = self.cfg.sampling
        (h, c), logits = self.model.encode([self._prefix(x) for x in contexts])
        h, c, logits = (t.repeat_interleave(n, dim=-2) for t in (h, c, logits))
        topic, owner = self._topic(contexts), torch.arange(len(contexts)).repeat_interleave(n)
        tokens = torch.full((logits.size(0), s.max_new_tokens), PAD)
        logprob, length = torch.zeros(logits.size(0)), torch.zeros(logits.size(0))
        finished = torch.zeros(logits.size(0), dtype=torch.bool)
        active = torch.arange(logits.size(0))  # rows still writing; finished rows cost nothing
        for step in range(s.max_new_tokens):
            logits[:, PAD] = logits[:, UNK] = -math.inf
            token = draw(logits + topic[owner[active]], s.temperature, s.top_k, s.top_p, rng)
            tokens[active, step] = token
            logprob[active] += torch.log_softmax(logits, -1).gather(1, token[:, None])[:, 0]
            length[active] += 1
            going = token != END
            finished[active[~going]] = True
            if not bool(going.any()):
                break
            active, token, h, c = active[going], token[going], h[:, going], c[:, going]
            out, (h, c) = self.model.lstm(self.model.embed(token[:, None]), (h, c))
            logits = self.model.head(out[:, 0])
        fluency = torch.where(finished, logprob / length.clamp_min(1), -math.inf)
        return [self._text(row) for row in tokens.tolist()], fluency.numpy()

    def _text(self, ids: list[int]) -> str:
        if END not in ids:
            return ""
        return detokenize([self.vocab[t] for t in ids[: ids.index(END)]])

    @torch.no_grad()
    def score(self, contexts: Sequence[Context | None], endings: Sequence[Sequence[str]]) -> list[np.ndarray]:
        (h, c), first = self.model.encode([self._prefix(x) for x in contexts])
        rows = [(i, self._ids(e) + [END]) for i, group in enumerate(endings) for e in group]
        scores = np.zeros((len(rows), 2), dtype=np.float64)
        by_length = np.argsort([len(t) for _, t in rows], kind="stable")  # little padding per chunk
        for start in range(0, len(rows), _SCORE_ROWS):
            at = by_length[start:start + _SCORE_ROWS]
            chunk = [rows[k] for k in at]
            owner = torch.tensor([i for i, _ in chunk])
            ids = pad_sequence([torch.tensor(t) for _, t in chunk], batch_first=True, padding_value=PAD)
            out, _ = self.model.lstm(self.model.embed(ids[:, :-1]), (h[:, owner], c[:, owner]))
            logits = torch.cat([first[owner][:, None], self.model.head(out)], dim=1)
            logp = torch.log_softmax(logits, dim=-1).gather(2, ids[:, :, None]).squeeze(2)
            logp = logp.masked_fill(ids == PAD, 0.0)
            scores[at, 0] = logp.sum(1).numpy()
            scores[at, 1] = [len(t) - 1 for _, t in chunk]
        bounds = np.cumsum([0, *map(len, endings)])
        return [scores[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
