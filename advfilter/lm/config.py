"""Settings of the LM commands: ``finetune-phi2``, ``sweep`` and ``evaluate`` (each read from its
own YAML under ``configs/`` with ``load_config(..., schema=...)``)."""
from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from advfilter.core.settings import LoraSettings, Strict


class FinetuneConfig(Strict):
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
    valid_fraction: float = Field(0.1, gt=0, lt=1, description=(
        "data with no train split: the share of its videos held out to validate on"))
    save_every: int = Field(50, ge=1, description="checkpoint every N optimizer steps")
    load_4bit: bool = False
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    seed: int = 0


class AshaSettings(Strict):
    """ASHA early stopping of sweep trials on the sweep's metric (``advfilter sweep``)."""

    enabled: bool = True
    grace_period: int = Field(0, ge=0, description="optimizer steps before a trial can be stopped; "
                                                  "0 = its first evaluation")
    reduction_factor: float = Field(2, gt=1, description="keep the best 1/factor at each rung")


class SweepConfig(Strict):
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


class EvaluateConfig(Strict):
    """Zero-shot scoring of a causal LM on HellaSwag-format items (``advfilter evaluate``)."""

    model: str = "microsoft/phi-2"
    adapter: str | None = None
    split: str | None = None
    batch_size: int = Field(16, ge=1, description="items per forward pass")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")


def plan_steps(cfg: FinetuneConfig, n_train: int) -> tuple[int, int]:
    """(optimizer steps per epoch, steps in all) for ``n_train`` training items."""
    per_epoch = math.ceil(n_train / (cfg.batch_size * cfg.grad_accum))
    return per_epoch, cfg.max_steps or per_epoch * cfg.epochs
