"""Settings of the commands that read a finished run: export, contamination, annotate."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from advfilter.core.settings import Strict


class ExportConfig(Strict):
    """``advfilter export``: which round, in which format."""

    format: Literal["hellaswag", "swag", "hf", "lm-eval"] = "hellaswag"
    round: int | None = Field(None, ge=0, description="None = the last; 0 = random negatives")
    split: Literal["train", "validation", "test"] | None = Field(
        None, description="only this split's items; None = all (each item carries its split)")
    name: str | None = Field(None, description="task / dataset name; None = advfilter_RUN_NAME")
    verified_only: bool = Field(False, description="only items people kept (annotate pull)")
    decontaminate: str | None = Field(None, description="contamination report: leave its flagged items out")
    drop_ambiguous: bool = Field(False, description=(
        "leave out items whose negative the driver scored filter.ambiguous_margin above the "
        "gold, unless people kept them (annotate pull)"))


class ContaminationConfig(Strict):
    """``advfilter contamination``: n-gram overlap with evaluation sets and across splits."""

    ngram: int = Field(13, ge=1, description="words per n-gram (13: GPT-3's and Phi's choice)")


class AnnotateConfig(Strict):
    """``advfilter annotate``: how items go to Label Studio."""

    overlap: int = Field(2, ge=1, description=(
        "annotations wanted per task: two or more give majorities and agreement"))
    batch_size: int = Field(100, ge=1, description="tasks per import request")
    min_annotator_accuracy: float = Field(0.0, ge=0, le=1, description=(
        "drop the votes of annotators less accurate against the gold than this (0 = keep all)"))
    min_annotator_tasks: int = Field(5, ge=1, description="tasks an annotator answers before being judged")
    flag_votes: int | None = Field(None, ge=1, description=(
        "answers flagging a distractor before it is replaced; None = more than half of the "
        "answers, once the task has all it asked for"))
    replace_flags: list[Literal["plausible", "nonsense"]] = Field(
        ["plausible"], description="flags that get a distractor replaced: plausible, nonsense")
    order: Literal["items", "ambiguous"] = Field("items", description=(
        "the order tasks are pushed in: items (as exported) | ambiguous (the items whose "
        "negative the driver scored furthest above the gold first)"))

    @model_validator(mode="after")
    def _reachable(self) -> "AnnotateConfig":
        if self.flag_votes is not None and self.flag_votes > self.overlap:
            raise ValueError(f"annotate.flag_votes {self.flag_votes} > annotate.overlap {self.overlap}: "
                             "no distractor could ever be replaced")
        return self
