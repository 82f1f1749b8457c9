"""The ``lm`` probe: a pretrained causal LM of another family than the loop's models, zero-shot.

Nothing is trained: each item is scored exactly as lm-evaluation-harness scores HellaSwag
(``advfilter.core.lm``) and the probe picks the ending with the highest log-likelihood per
character (``acc_norm``). It sees what the encoder and TF-IDF probes may not: whether the
negatives read as fluently, after this context, as the gold does to a language model.
HellaSwag's own negatives were written by an LM, so they pass this gauge by construction.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from advfilter.core.lm import Scorer, acc_norm_picks, to_doc
from advfilter.core.models import load_causal_lm
from advfilter.core.progress import progress
from advfilter.core.settings import LMProbeConfig


def lm_picks(items: Sequence[dict[str, Any]], cfg: LMProbeConfig, device: str) -> np.ndarray:
    """The ``acc_norm`` choice of ``cfg.model`` for each item, in order."""
    model, tok = load_causal_lm(cfg.model, dtype=cfg.dtype, device=device)
    docs = [to_doc({"activity_label": "", **it}) for it in items]  # no label: the context alone
    bar = progress(total=len(docs), desc=f"lm probe ({cfg.model})")
    lls = Scorer(model.eval(), tok).score_all(docs, cfg.batch_size, bar.update)
    bar.close()
    return acc_norm_picks(docs, lls)
