"""``evaluate``, ``finetune-phi2`` and ``compare``: using the data set on a language model.

Each command reads its YAML config (``configs/evaluate.yaml``, ``configs/finetune_phi2.yaml``;
built-in defaults equal them), applies the flags and ``--set`` overrides, and calls its recipe.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

from advfilter.cli import RUN, SET, main, overrides_of, resolve_run
from advfilter.cli.options import setting
from advfilter.core.config import load_config
from advfilter.core.errors import ConfigError
from advfilter.lm.config import EvaluateConfig, FinetuneConfig, SweepConfig

_YAML = click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="YAML config (built-in defaults: the one in configs/).")


def _training_data(command: Callable) -> Callable:
    """--data, --run and --eval-data: where finetune-phi2 and sweep read their items."""
    for option in reversed([
        click.option("--data", type=click.Path(exists=True, path_type=Path),
                     help="Exported items: HellaSwag JSONL or an `export --format hf` folder."),
        RUN,
        click.option("--eval-data", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="Validation JSONL (default: the data's validation split)."),
    ]):
        command = option(command)
    return command


def _fmt(row: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def _side_by_side(base: dict, tuned: dict | None) -> list[str]:
    """Overall and per-activity acc / acc_norm; with ``tuned``, baseline and tuned side by side."""
    def cell(r: dict | None) -> str:
        return f"{r['acc']:.3f} {r['acc_norm']:.3f}" if r else "    -     -"

    results = [base] + ([tuned] if tuned else [])
    head = "acc   acc_norm" + ("   (tuned) acc acc_norm  Δacc_norm" if tuned else "")
    lines = [f"{'':32} {'n':>5}  {head}"]

    def row(name: str, rows: list[dict | None]) -> str:
        text = f"{name[:32]:32} {rows[0]['n']:5d}  " + "   ".join(cell(r) for r in rows)
        if tuned and rows[1]:
            text += f"   {rows[1]['acc_norm'] - rows[0]['acc_norm']:+.3f}"
        return text

    lines.append(row("all", results))
    groups = [("activity", k) for k in base["by"]["activity"]]
    if len(base["by"]["source"]) > 1:
        groups += [("source", k) for k in base["by"]["source"]]
    for group, key in groups:
        lines.append(row(f"  {group} {key or '-'}", [r["by"][group].get(key) for r in results]))
    return lines


@main.command()
@setting("--model", key="model", schema=EvaluateConfig, metavar="NAME_OR_PATH",
         text="Causal LM, e.g. microsoft/phi-2 or a local folder.")
@setting("--adapter", key="adapter", schema=EvaluateConfig, type=click.Path(file_okay=False, exists=True),
         text="LoRA adapter: the finetune-phi2 --out folder or its adapter/; the base model is scored "
              "too, side by side.")
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path),
              help="HellaSwag-format JSONL (advfilter export, or HellaSwag itself).")
@RUN
@setting("--split", key="split", schema=EvaluateConfig, text="Only items of this split, e.g. test.")
@setting("--batch-size", key="batch_size", schema=EvaluateConfig)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write results JSON (with the resolved config) here.")
@_YAML
@SET
@click.pass_context
def evaluate(ctx: click.Context, data: Path | None, run_dir: Path | None, output: Path | None,
             config_file: Path | None, overrides: tuple[str, ...]) -> None:
    """Zero-shot acc / acc_norm, scored as lm-evaluation-harness scores HellaSwag, on a JSONL
    file (--data) or a run's items (--run; default: the latest finished run), e.g.
    --split test."""
    from advfilter.lm import evaluate as ev
    from advfilter.core.progress import progress
    from advfilter.core.store import RunStore, write_json

    if data is not None and run_dir is not None:
        raise ConfigError("give one of --data FILE and --run RUN_DIR, not both")
    cfg = load_config(config_file, overrides_of(ctx, overrides), schema=EvaluateConfig)
    if data is not None:
        docs, source = ev.read_docs(data, cfg.split), str(data)
    else:
        run = RunStore(resolve_run(run_dir))
        docs, source = ev.run_docs(run, cfg.split), str(run.root)

    def score(c: EvaluateConfig, what: str) -> dict:
        with progress(total=len(docs), desc=f"scoring ({what})", unit="item") as bar:
            return ev.evaluate(c, docs, source, on_batch=bar.update)

    base = score(cfg.model_copy(update={"adapter": None}), "base model")
    tuned = score(cfg, "with adapter") if cfg.adapter else None
    for r, name in ((base, "base"), (tuned, "tuned")):
        if r:
            click.echo(f"{name}: n={r['n']}  acc={r['acc']:.4f} ± {r['acc_stderr']:.4f}  "
                       f"acc_norm={r['acc_norm']:.4f} ± {r['acc_norm_stderr']:.4f}")
    click.echo("\n".join(_side_by_side(base, tuned)))
    if output:
        write_json(output, {**tuned, "baseline": base} if tuned else base)
        click.echo(f"results: {output}")


@main.command(name="finetune-phi2")
@_training_data
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: adapter/, config.yaml, metrics.jsonl, metrics.json, checkpoint/.")
@_YAML
@setting("--model", key="model", schema=FinetuneConfig, text="Base model name or path.")
@setting("--objective", key="objective", schema=FinetuneConfig,
         text="lm: loss on the gold ending's tokens; mc: cross-entropy over the choices.")
@setting("--lora-r", key="lora.r", schema=FinetuneConfig, text="LoRA rank.")
@setting("--lora-alpha", key="lora.alpha", schema=FinetuneConfig)
@setting("--lora-dropout", key="lora.dropout", schema=FinetuneConfig)
@setting("--epochs", key="epochs", schema=FinetuneConfig)
@setting("--max-steps", key="max_steps", schema=FinetuneConfig)
@setting("--lr", key="lr", schema=FinetuneConfig, text="Learning rate.")
@setting("--scheduler", key="scheduler", schema=FinetuneConfig)
@setting("--warmup-steps", key="warmup_steps", schema=FinetuneConfig)
@setting("--batch-size", key="batch_size", schema=FinetuneConfig)
@setting("--grad-accum", key="grad_accum", schema=FinetuneConfig)
@setting("--save-every", key="save_every", schema=FinetuneConfig)
@setting("--eval-every", key="eval_every", schema=FinetuneConfig)
@setting("--eval-items", key="eval_items", schema=FinetuneConfig)
@setting("--4bit", "load_4bit", key="load_4bit", schema=FinetuneConfig, is_flag=True,
         text="Load the base model in 4 bits (GPU + bitsandbytes).")
@setting("--seed", key="seed", schema=FinetuneConfig)
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.")
@click.option("--wandb", "use_wandb", is_flag=True,
              help="Also log to Weights & Biases (offline unless configured).")
@SET
@click.pass_context
def finetune_phi2(ctx: click.Context, data: Path | None, run_dir: Path | None, eval_data: Path | None,
                  out: Path, config_file: Path | None, resume: bool, use_wandb: bool,
                  overrides: tuple[str, ...]) -> None:
    """LoRA fine-tuning (peft) of Phi-2's attention and MLP projections on exported items
    (--data) or a run's train split, validated on its validation split (--run; default: the
    latest finished run). Its test split is left for `advfilter evaluate --run RUN --split test`."""
    from advfilter.core.store import RunStore
    from advfilter.lm.finetune import finetune_recipe

    if data is not None and run_dir is not None:
        raise ConfigError("give one of --data and --run, not both")

    cfg = load_config(config_file, overrides_of(ctx, overrides), schema=FinetuneConfig)
    source = data if data is not None else RunStore(resolve_run(run_dir))
    summary = finetune_recipe(cfg, source, out, eval_data, resume, use_wandb,
                              on_log=lambda row: click.echo(_fmt(row)))
    click.echo(f"finetune: {summary['steps']} steps; loss {summary['first_loss']:.4f} -> "
               f"{summary['last_loss']:.4f}; eval acc={summary['eval_acc']} "
               f"acc_norm={summary['eval_acc_norm']} (base model: acc_norm={summary['baseline_acc_norm']}); "
               f"adapter in {out / 'adapter'}")


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--baseline", type=click.Path(file_okay=False, exists=True, path_type=Path), metavar="OUT_BASE",
              help="The run the others are compared with: prints a Markdown table (a row per metric, "
                   "a column per run, changes from the baseline marked) for a pull-request comment.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the Markdown table to this file.")
def compare(runs: tuple[Path, ...], baseline: Path | None, out_file: Path | None) -> None:
    """Fine-tuning runs (their --out folders) side by side: `compare A B`, or
    `compare --baseline BASE A [B ...]` as Markdown."""
    from advfilter.core.store import atomic_path
    from advfilter.lm.compare import compare_markdown, compare_table

    if baseline is None:
        if len(runs) != 2:
            raise ConfigError("compare takes two runs, or --baseline OUT_BASE and one or more runs")
        click.echo(compare_table(*runs))
        return
    table = compare_markdown(baseline, list(runs))
    click.echo(table)
    if out_file:
        with atomic_path(out_file) as tmp:
            tmp.write_text(table + "\n")


@main.command()
@_training_data
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Sweep folder: results.jsonl, best.yaml, trials/ID/, tune/. Rerun to resume.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Sweep YAML (built-in defaults: configs/sweep_phi2.yaml).")
@setting("--model", key="finetune.model", schema=SweepConfig, text="Base model name or path.")
@setting("--search", key="search", schema=SweepConfig)
@setting("--trials", key="trials", schema=SweepConfig)
@setting("--max-concurrent", key="max_concurrent", schema=SweepConfig)
@setting("--max-steps", key="finetune.max_steps", schema=SweepConfig, text="Optimizer steps per trial.")
@setting("--metric", key="metric", schema=SweepConfig, text="What ASHA and best.yaml rank by.")
@click.option("--ray-address", help="Run the trials on this Ray cluster (default: a local Ray runtime).")
@click.option("--wandb", "use_wandb", is_flag=True,
              help="Log every trial to Weights & Biases, grouped by sweep (offline unless configured).")
@SET
@click.pass_context
def sweep(ctx: click.Context, data: Path | None, run_dir: Path | None, eval_data: Path | None, out: Path,
          config_file: Path | None, ray_address: str | None, use_wandb: bool,
          overrides: tuple[str, ...]) -> None:
    """LoRA hyper-parameter search: finetune-phi2 trials over the YAML's space (grid, random or
    Optuna) on Ray Tune, with ASHA early stopping on validation loss. Writes OUT/results.jsonl
    and OUT/best.yaml (ready for `finetune-phi2 --config`); a killed sweep resumes when the
    same command is run again."""
    from advfilter.core.progress import progress
    from advfilter.lm.results import read_results, results_table, trial_line
    from advfilter.lm.sweep import SweepData, sweep as run_sweep
    from advfilter.lm.space import planned_trials

    if data is not None and run_dir is not None:
        raise ConfigError("give one of --data and --run, not both")
    cfg = load_config(config_file, overrides_of(ctx, overrides), schema=SweepConfig)
    source = (SweepData(str(data.resolve()), False, str(eval_data.resolve()) if eval_data else None)
              if data is not None else
              SweepData(str(resolve_run(run_dir).resolve()), True, str(eval_data.resolve()) if eval_data else None))
    if Path(cfg.finetune.model).exists():  # trials run in other processes: an absolute path
        cfg = cfg.model_copy(update={"finetune": cfg.finetune.model_copy(
            update={"model": str(Path(cfg.finetune.model).resolve())})})
    with progress(total=planned_trials(cfg), desc="trials", unit="trial") as bar:
        bar.update(len(read_results(out)))  # finished before a resume

        def on_trial(row: dict) -> None:
            bar.write(trial_line(row))
            bar.update(1)

        result = run_sweep(cfg, source, out, ray_address, use_wandb, on_trial=on_trial)
    rows, best = result["results"], result["best"]
    click.echo(results_table(rows, list(cfg.space), best))
    if best is not None:
        click.echo(f"best: trial {best['trial']} ({cfg.metric} {best['metrics'][cfg.metric]:.4f}); "
                   f"its config: {out / 'best.yaml'}")
    if len(rows) < result["trials"]:
        click.echo(f"sweep stopped with {len(rows)} of {result['trials']} trials finished; "
                   f"run the same command again to resume", err=True)
        raise SystemExit(1)
