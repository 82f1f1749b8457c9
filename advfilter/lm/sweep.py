"""``advfilter sweep``: a LoRA hyper-parameter search over ``finetune-phi2`` trials on Ray Tune.

The output folder is the sweep's only state:

- ``sweep.yaml``: what was searched on which data; a rerun must ask for the same;
- ``tune/``: Ray Tune's experiment state, which ``Tuner.restore`` resumes;
- ``trials/ID/``: each trial's ``finetune-phi2`` output (config.yaml, metrics.jsonl,
  checkpoint/, adapter/ once it finished);
- ``results.jsonl``: one line per finished trial: ``trial``, ``config`` (the searched
  settings), ``metrics`` (the last evaluation's ``eval_loss``, ``eval_acc``, ``eval_acc_norm``,
  its ``step``, the base model's figures, the last train loss), ``status`` (``completed``,
  ``stopped`` by ASHA, ``error``);
- ``best.yaml``: the best trial's whole finetune config, for ``finetune-phi2 --config``.

A killed sweep, rerun with the same command, resumes: Tune restores its trials, finished ones
stay finished, and an unfinished trial continues from its own ``checkpoint/`` (a trial whose
``metrics.json`` exists just reports it again).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from advfilter.core.errors import ConfigError
from advfilter.core.store import RunStore, atomic_path, read_jsonl, write_jsonl
from advfilter.lm.config import SweepConfig, plan_steps
from advfilter.lm.data import training_data
from advfilter.lm.finetune import finetune_recipe
from advfilter.lm.results import (
    EVAL_KEYS, best_result, metrics_rows, read_results, trial_result, write_best,
)
from advfilter.lm.space import check_space, grid_points, longest_trial, trial_config, trial_count, tune_space


# Tune pickles its experiment (callbacks, searcher, trainable's parameters) with the names of
# the modules that defined them. Sweeps written before these modules moved into advfilter.lm
# name the old modules; they resolve to the new ones while such a sweep is restored.
_MOVED = {"advfilter.sweep": "advfilter.lm.sweep", "advfilter.sweep_space": "advfilter.lm.space",
          "advfilter.finetune": "advfilter.lm.finetune", "advfilter.evaluate": "advfilter.lm.evaluate"}


@contextlib.contextmanager
def _older_module_names() -> Iterator[None]:
    added = [old for old in _MOVED if old not in sys.modules]
    for old in added:
        sys.modules[old] = importlib.import_module(_MOVED[old])
    try:
        yield
    finally:
        for old in added:
            del sys.modules[old]


def restore_tuner(tune_dir: Path, trainable: Any) -> Any:
    """Tune's tuner saved in ``tune_dir``, this version's or an older one's."""
    from ray import tune

    with _older_module_names():
        return tune.Tuner.restore(str(tune_dir), trainable, resume_unfinished=True)


@dataclass(frozen=True)
class SweepData:
    """Where the trials read their items: a run folder or an exported file/folder."""

    path: str
    is_run: bool = False
    eval_data: str | None = None

    def load(self) -> Path | RunStore:
        return RunStore(Path(self.path)) if self.is_run else Path(self.path)


def _trial(params: dict[str, Any], *, finetune: dict[str, Any], data: SweepData, root: str,
           threads: int, use_wandb: bool, n_train: int = 0) -> None:
    """One Tune trial: ``finetune-phi2`` into ``ROOT/trials/ID``, reporting each evaluation;
    the one at its last step only once its adapter is written, so ASHA stopping it there
    loses nothing."""
    import torch
    from ray import tune

    torch.set_num_threads(threads)
    out = Path(root) / "trials" / tune.get_context().get_trial_id()
    if (out / "metrics.json").exists():  # it finished before the sweep was stopped
        last = [r for r in metrics_rows(out) if "eval_loss" in r][-1]
        tune.report({k: last[k] for k in EVAL_KEYS})
        return

    cfg = trial_config(finetune, params)
    _, total = plan_steps(cfg, n_train)
    evals: list[dict[str, Any]] = []

    def on_log(row: dict[str, Any]) -> None:
        if "eval_loss" in row:
            evals.append(row)
            if row["step"] < total:
                tune.report({k: row[k] for k in EVAL_KEYS})

    finetune_recipe(cfg, data.load(), out, Path(data.eval_data) if data.eval_data else None,
                    resume=(out / "checkpoint" / "state.pt").exists(), use_wandb=use_wandb,
                    on_log=on_log, wandb_group=Path(root).name)
    if evals and evals[-1]["step"] >= total:
        tune.report({k: evals[-1][k] for k in EVAL_KEYS})


def _recorder(root: Path) -> Any:
    """A Tune callback that keeps ``ROOT/results.jsonl`` up to date as trials end (pickled with
    the experiment, so it holds only the folder)."""
    from ray.tune import Callback

    class Recorder(Callback):
        def _record(self, trial: Any, status: str) -> None:
            row = trial_result(root, trial.trial_id, dict(trial.config), status)
            if status == "error" and trial.error_file and Path(trial.error_file).exists():
                lines = Path(trial.error_file).read_text().strip().splitlines()
                row["error"] = lines[-1] if lines else "unknown error"
            path = root / "results.jsonl"
            rows = {r["trial"]: r for r in (read_jsonl(path) if path.exists() else [])}
            rows[row["trial"]] = row
            write_jsonl(path, rows.values())

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._record(trial, "stopped")

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._record(trial, "error")

    return Recorder()


def _watch(path: Path, on_row: Callable[[dict[str, Any]], None], stop: threading.Event) -> None:
    """Call ``on_row`` for each trial that ``path`` (results.jsonl) gains, until ``stop``."""
    seen = {r["trial"] for r in (read_jsonl(path) if path.exists() else [])}
    last = False
    while not last:
        last = stop.wait(0.5)
        for row in read_jsonl(path) if path.exists() else []:
            if row["trial"] not in seen:
                seen.add(row["trial"])
                on_row(row)


def _check_same_sweep(root: Path, settings: dict[str, Any]) -> None:
    path = root / "sweep.yaml"
    if path.exists():
        before = yaml.safe_load(path.read_text())
        if before != settings:
            diff = next(k for k in sorted(set(before) | set(settings)) if before.get(k) != settings.get(k))
            raise ConfigError(f"{root}: holds a sweep with other settings ({diff}: {before.get(diff)!r} "
                              f"then, {settings.get(diff)!r} now); rerun it as it was or use a new --out")
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(settings, sort_keys=True))


def _search(cfg: SweepConfig, n: int, concurrent: int) -> tuple[Any, dict[str, Any]]:
    """(Tune search algorithm running at most ``concurrent`` trials at once, param_space) for
    ``n`` trials of ``cfg.search``."""
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if cfg.search == "grid":
        # each point replaces one sample of the space, so the n trials are the grid's first n
        return (BasicVariantGenerator(points_to_evaluate=grid_points(cfg.space)[:n], max_concurrent=concurrent),
                tune_space(cfg.space))
    if cfg.search == "random":
        return BasicVariantGenerator(random_state=cfg.seed, max_concurrent=concurrent), tune_space(cfg.space)
    try:
        from ray.tune.search.optuna import OptunaSearch

        searcher = OptunaSearch(metric=cfg.metric, mode=cfg.mode, seed=cfg.seed)
    except (ImportError, AssertionError):
        raise ConfigError("search: optuna needs the optuna package (pip install optuna)") from None
    return ConcurrencyLimiter(searcher, max_concurrent=concurrent), tune_space(cfg.space)


def _scheduler(cfg: SweepConfig, first_eval: int, longest: int) -> Any:
    """ASHA on the metric at each evaluation up to the longest trial's last step (a trial
    reports its last evaluation once its adapter is written); FIFO when it is off or no
    evaluation comes before the end."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    grace = cfg.asha.grace_period or first_eval
    if not cfg.asha.enabled or grace >= longest:
        return FIFOScheduler()
    return ASHAScheduler(time_attr="step", max_t=longest, grace_period=grace,
                         reduction_factor=cfg.asha.reduction_factor, stop_last_trials=False)


def _check_inputs(cfg: SweepConfig, data: SweepData, out: Path, use_wandb: bool) -> int:
    """Refuse what cannot run (no train or validation items, --wandb without wandb, another
    sweep's folder) before Ray starts; the training items' count."""
    chosen = training_data(data.load(), Path(data.eval_data) if data.eval_data else None,
                           cfg.finetune.valid_fraction, cfg.finetune.seed)
    train, valid = chosen.train, chosen.valid
    if not train or not valid:
        raise ConfigError(f"{data.path}: a sweep needs train and validation items "
                          f"(found {len(train)} and {len(valid)})")
    if use_wandb:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise ConfigError("--wandb needs the wandb package (pip install 'advfilter[wandb]')") from None
    out.mkdir(parents=True, exist_ok=True)
    _check_same_sweep(out, {"sweep": cfg.model_copy(update={"max_concurrent": 0}).model_dump(), **vars(data)})
    return len(train)


def trial_resources(max_concurrent: int) -> tuple[int, dict[str, int]]:
    """The trials run at a time (``max_concurrent``; 0 = one per GPU, or one) and what each
    asks of the Ray cluster: an equal share of its CPUs, but never more than one node has (a
    trial runs on one node: asking more left it pending for ever), and a GPU each where
    there are GPUs."""
    import ray

    from advfilter.core.cluster import largest_node_cpus

    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    concurrent = max_concurrent or gpus or 1
    cpus = int(resources.get("CPU", 1)) // concurrent
    return concurrent, {"cpu": max(1, min(cpus, largest_node_cpus())), "gpu": 1 if gpus else 0}


def _tuner(cfg: SweepConfig, data: SweepData, out: Path, n: int, n_train: int, use_wandb: bool) -> tuple[Any, bool]:
    """Tune's tuner for the sweep in ``out`` (restored when Tune has state there), and whether
    it was restored; trials get an equal share of the cluster (a GPU each where there are)."""
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    concurrent, per_trial = trial_resources(cfg.max_concurrent)
    trainable = tune.with_resources(
        tune.with_parameters(_trial, finetune=cfg.finetune.model_dump(), data=data, root=str(out),
                             threads=per_trial["cpu"], use_wandb=use_wandb, n_train=n_train), per_trial)
    tune_dir = out / "tune"
    if tune.Tuner.can_restore(str(tune_dir)):
        return restore_tuner(tune_dir, trainable), True
    per_epoch, _ = plan_steps(cfg.finetune, n_train)
    search_alg, space = _search(cfg, n, concurrent)
    return tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(metric=cfg.metric, mode=cfg.mode, search_alg=search_alg,
                                    scheduler=_scheduler(cfg, cfg.finetune.eval_every or per_epoch,
                                                         longest_trial(cfg, n_train)),
                                    num_samples=n),
        run_config=tune.RunConfig(name="tune", storage_path=str(out), verbose=0,
                                  callbacks=[JsonLoggerCallback(), _recorder(out)],
                                  failure_config=tune.FailureConfig(max_failures=0))), False


def _fit(tuner: Any, out: Path, on_trial: Callable[[dict[str, Any]], None]) -> None:
    """Run the trials, calling ``on_trial`` as each one's results line appears."""
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(out / "results.jsonl", on_trial, stop), daemon=True)
    watcher.start()
    try:
        tuner.fit()
    finally:
        stop.set()
        watcher.join()


def sweep(cfg: SweepConfig, data: SweepData, out: Path, ray_address: str | None = None,
          use_wandb: bool = False, on_trial: Callable[[dict[str, Any]], None] = lambda _: None
          ) -> dict[str, Any]:
    """Run (or resume) the sweep into ``out``; returns ``results`` (the finished trials, best
    first), ``best`` (or None), ``trials`` (asked for) and ``resumed``. ``on_trial`` is called
    with each results line as its trial ends."""
    from advfilter.core.cluster import ray_session

    cfg = cfg.model_copy(update={"space": check_space(cfg)})  # values as the trials read them
    n, out = trial_count(cfg, cfg.space), out.resolve()
    n_train = _check_inputs(cfg, data, out, use_wandb)
    # Tune saves its experiment state at most this often (a killed sweep loses less), prints
    # no tables of its own and logs results as JSON only (no TensorBoard/CSV).
    for name, value in (("TUNE_GLOBAL_CHECKPOINT_S", "1"), ("RAY_AIR_NEW_OUTPUT", "0"),
                        ("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")):
        os.environ.setdefault(name, value)
    with ray_session(ray_address, os.cpu_count() or 1, shared=out):
        tuner, resumed = _tuner(cfg, data, out, n, n_train, use_wandb)
        _fit(tuner, out, on_trial)
    rows = read_results(out)
    best = best_result(rows, cfg.metric, cfg.mode)
    if best is not None:
        write_best(out, best, cfg.metric, len(rows))
    sign = 1 if cfg.mode == "min" else -1
    rows.sort(key=lambda r: (r["metrics"].get(cfg.metric) is None, sign * (r["metrics"].get(cfg.metric) or 0)))
    return {"results": rows, "best": best, "trials": n, "resumed": resumed}


