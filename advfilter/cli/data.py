"""``export``: a filtered round in the formats other tools read."""
from __future__ import annotations

from pathlib import Path

import click

from advfilter.cli import CONFIG, RUN, SET, main, overrides_of, run_config
from advfilter.core.store import RunStore


@main.command()
@RUN
@click.option("--format", "fmt", type=click.Choice(["hellaswag", "swag", "hf", "lm-eval"]),
              help="hellaswag: JSONL (default); swag: CSV; hf: DatasetDict folder; lm-eval: task folder.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output file (hellaswag, swag) or folder (hf, lm-eval).")
@click.option("--round", "round_n", type=int, help="Round to export (default: the last; 0 = random).")
@click.option("--split", help="Value of the split field (default train; hf splits by video).")
@click.option("--name", help="Task / dataset name (default: advfilter_RUN_NAME).")
@click.option("--verified-only", is_flag=True, default=None,
              help="Only items people kept (annotate pull's decisions.jsonl).")
@CONFIG
@SET
def export(run_dir: Path, fmt: str | None, out: Path, round_n: int | None, split: str | None,
           name: str | None, verified_only: bool | None, config_file: Path | None,
           overrides: tuple[str, ...]) -> None:
    """Export a round of a filtered run as multiple-choice items (gold at a seeded position)."""
    from advfilter.export import export_run

    run = RunStore(run_dir)
    cfg = run_config(run, config_file, overrides_of(
        overrides, export__format=fmt, export__round=round_n, export__split=split, export__name=name,
        export__verified_only=verified_only))
    s = export_run(cfg, run, out)
    if cfg.export.format == "lm-eval":
        click.echo(f"run it with: lm_eval --model hf --model_args pretrained=MODEL "
                   f"--include_path {out} --tasks {s.name}")
    if s.splits:
        click.echo("splits: " + ", ".join(f"{k}={v}" for k, v in s.splits.items()))
    click.echo(f"export: {s.items} items to {out}")
