"""Each discriminator learns a separable toy task, and reloads to identical scores."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from advfilter.config import DiscriminatorConfig
from discriminators import Bank, discriminators, fit, score
from discriminators.bank import MAX_WORDS, add_bert_tokens
from discriminators.ensemble import Ensemble

CONTEXTS, POOL = 24, 5
GOOD, BAD = "the cook stirs the soup slowly.", "a ladder sings over the dark moon."


def toy_bank() -> Bank:
    """Gold rows differ from negatives in words, POS tags and LM scores alike."""
    rows = CONTEXTS * (POOL + 1)
    gold = np.zeros(rows, dtype=bool)
    gold[::POOL + 1] = True
    words = np.zeros((rows, MAX_WORDS), dtype=np.int32)
    words[:, :3] = np.where(gold[:, None], [3, 4, 5], [6, 7, 8])
    pos = np.zeros((rows, MAX_WORDS), dtype=np.int16)
    pos[:, :4] = np.where(gold[:, None], [1, 2, 3, 1], [3, 3, 2, 2])
    lm = np.where(gold[:, None], [-5.0, -9.0, 3, 8], [-20.0, -15.0, 3, 8]).astype(np.float32)
    ctx = np.zeros((CONTEXTS, MAX_WORDS), dtype=np.int32)
    ctx[:, :2] = [3, 9]
    return Bank(np.array([f"c{i}" for i in range(CONTEXTS)]),
                np.arange(0, rows + 1, POOL + 1, dtype=np.int64), words, ctx, lm,
                vocab_size=10, pos=pos, pos_size=4)


def options(bank: Bank) -> np.ndarray:
    start = bank.offsets[:-1]
    return np.stack([start, start + 1, start + 2, start + 3], axis=1)


CFG = DiscriminatorConfig(epochs=30, batch_size=8, lr=0.01, embed_dim=16, hidden_dim=16)


@pytest.mark.parametrize("name", ["mlp", "bow", "cnn", "bilstm", "ensemble"])
def test_discriminator_overfits_then_reloads_to_identical_scores(name, tmp_path):
    bank = toy_bank()
    build = (lambda: Ensemble(bank, CFG, ["mlp", "bow", "cnn", "bilstm"])) if name == "ensemble" \
        else (lambda: discriminators.get(name)(bank, CFG))
    model = build()
    fit(model, bank, options(bank), seed=0)
    scores = score(model, bank, options(bank))
    assert (scores.argmax(1) == 0).all()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    again = build()
    again.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    again.eval()
    np.testing.assert_array_equal(score(again, bank, options(bank)), scores)


def test_bert_cross_encoder_learns_to_prefer_the_gold():
    bank = toy_bank()
    texts = [GOOD if i % (POOL + 1) == 0 else BAD for i in range(len(bank.lm))]
    contexts = pd.DataFrame({"id": bank.context_ids, "ctx_a": "A cook stands at a stove.",
                             "ctx_b": "The cook"})
    cfg = DiscriminatorConfig(epochs=2, batch_size=8, bert_lr=5e-5, bert_max_length=24)
    from discriminators.bert import load_tokenizer

    add_bert_tokens(bank, contexts, texts, load_tokenizer(cfg.bert_model), cfg.bert_max_length)
    model = discriminators.get("bert")(bank, cfg)
    fit(model, bank, options(bank)[:12], seed=0)
    assert (score(model, bank, options(bank)[12:]).argmax(1) == 0).all()


def test_bank_round_trips_through_one_file(tmp_path):
    bank = toy_bank()
    bank.save(tmp_path / "bank.npz")
    again = Bank.load(tmp_path / "bank.npz")
    assert (again.vocab_size, again.pos_size) == (10, 4)
    np.testing.assert_array_equal(again.words, bank.words)
    assert again.bert_ids is None and list(tmp_path.iterdir()) == [tmp_path / "bank.npz"]


def test_unknown_discriminator_lists_the_valid_names():
    from advfilter.errors import ConfigError

    with pytest.raises(ConfigError, match="bert, bilstm, bow, cnn, ensemble, mlp"):
        discriminators.get("svm")
