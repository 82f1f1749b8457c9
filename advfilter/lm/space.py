"""A sweep's search space: dotted ``finetune-phi2`` settings mapped to values or ranges.

A list is a set of values (``grid``: every combination; ``random``/``optuna``: one of them per
trial); ``{uniform|loguniform|randint: [low, high]}`` is a range, for ``random`` and ``optuna``.
Every value is checked against the finetune config before anything starts.
"""
from __future__ import annotations

import itertools
from typing import Any

from advfilter.core.config import load_config
from advfilter.core.errors import ConfigError
from advfilter.lm.config import FinetuneConfig, SweepConfig, plan_steps

RANGES = ("uniform", "loguniform", "randint")


def trial_config(finetune: dict[str, Any], params: dict[str, Any]) -> FinetuneConfig:
    """The finetune config of one trial: the shared ``finetune`` settings plus its ``params``."""
    return load_config(None, params, base=finetune, schema=FinetuneConfig)


def _number(value: Any) -> Any:
    """``value`` as a number where it is one written as text (YAML reads ``1e-4`` as a string)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _range(key: str, spec: dict[str, Any]) -> tuple[str, float, float]:
    kind, bounds = next(iter(spec.items()))
    if len(spec) != 1 or kind not in RANGES:
        raise ConfigError(f"space.{key}: a range is one of {{{', '.join(RANGES)}: [low, high]}}")
    bounds = [_number(b) for b in bounds] if isinstance(bounds, list) else bounds
    if (not isinstance(bounds, list) or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
            or bounds[0] >= bounds[1]):
        raise ConfigError(f"space.{key}: {kind} takes [low, high] with low < high, not {bounds!r}")
    if kind == "loguniform" and bounds[0] <= 0:
        raise ConfigError(f"space.{key}: loguniform needs low > 0")
    return kind, bounds[0], bounds[1]


def _setting(shared: dict[str, Any], key: str, value: Any) -> Any:
    """``value`` as the finetune config reads it under ``key`` (ConfigError if it cannot)."""
    try:
        tree = trial_config(shared, {key: value}).model_dump()
    except ConfigError as exc:
        raise ConfigError(f"space.{key}: {value!r} is not a valid setting "
                          f"({str(exc).removeprefix('config: ')})") from None
    for part in key.split("."):
        tree = tree[part]
    return tree


def check_space(cfg: SweepConfig) -> dict[str, Any]:
    """``cfg.space`` with each listed value as the finetune config reads it (``"1e-4"`` →
    0.0001); ConfigError naming ``space.KEY`` for an entry that is not a list or a range, a
    range in a grid, or a value the finetune config rejects."""
    shared = cfg.finetune.model_dump()
    if not cfg.space:
        raise ConfigError("sweep config: space is empty; give at least one setting to search")
    space: dict[str, Any] = {}
    for key, spec in cfg.space.items():
        if isinstance(spec, list) and spec:
            space[key] = [_setting(shared, key, value) for value in spec]
        elif isinstance(spec, dict):
            if cfg.search == "grid":
                raise ConfigError(f"space.{key}: a grid takes a list of values, not a range")
            kind, low, high = _range(key, spec)
            for value in ([int(low), int(high)] if kind == "randint" else [low, high]):
                _setting(shared, key, value)
            space[key] = {kind: [low, high]}
        else:
            raise ConfigError(f"space.{key}: expected a non-empty list of values or a range "
                              f"{{{'|'.join(RANGES)}: [low, high]}}")
    return space


def planned_trials(cfg: SweepConfig) -> int:
    """How many trials ``cfg`` asks for, once its space is checked (``check_space``)."""
    return trial_count(cfg, check_space(cfg))


def trial_count(cfg: SweepConfig, space: dict[str, Any]) -> int:
    """How many trials ``cfg`` asks for over its checked ``space``."""
    if cfg.search == "grid":
        return len(grid_points(space)[:cfg.trials or None])
    if not cfg.trials:
        raise ConfigError(f"trials: a {cfg.search} search needs a number of trials (--trials N)")
    return cfg.trials


def grid_points(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the lists, the last key varying fastest."""
    keys = list(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def tune_space(space: dict[str, Any]) -> dict[str, Any]:
    """Ray Tune domains: a list becomes ``tune.choice``, a range its sampler."""
    from ray import tune

    out: dict[str, Any] = {}
    for key, spec in space.items():
        if isinstance(spec, list):
            out[key] = tune.choice(spec)
        else:
            kind, low, high = _range(key, spec)
            out[key] = (tune.randint(int(low), int(high) + 1) if kind == "randint"
                        else getattr(tune, kind)(low, high))
    return out


def longest_trial(cfg: SweepConfig, n_train: int) -> int:
    """The most optimizer steps any trial of the space can take (``max_steps``, ``epochs``,
    ``batch_size`` and ``grad_accum`` may each vary): ASHA's ``max_t``."""
    def extremes(key: str) -> list[Any]:
        values = cfg.space.get(key)
        if values is None:
            return [None]
        listed = values if isinstance(values, list) else next(iter(values.values()))
        return sorted({min(listed), max(listed)})

    keys = ("max_steps", "epochs", "batch_size", "grad_accum")
    totals = []
    for combo in itertools.product(*(extremes(k) for k in keys)):
        params = {k: v for k, v in zip(keys, combo) if v is not None}
        totals.append(plan_steps(trial_config(cfg.finetune.model_dump(), params), n_train)[1])
    return max(totals)
