"""``export``: a filtered round in the formats other tools read."""
from __future__ import annotations

from pathlib import Path

import click

from advfilter.cli import CONFIG, RUN, SET, main, overrides_of, resolve_run, run_config
from advfilter.cli.options import setting
from advfilter.core.store import RunStore


@main.command()
@RUN
@setting("--format", "fmt", key="export.format",
         text="hellaswag: JSONL; swag: CSV; hf: DatasetDict folder; lm-eval: task folder.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output file (hellaswag, swag) or folder (hf, lm-eval).")
@setting("--round", key="export.round", text="Round to export (none: the last; 0 = random).")
@setting("--split", key="export.split",
         text="Only this split's items (none: all; every item carries its split, by whole folds: "
              "the same in every format).")
@setting("--name", key="export.name")
@setting("--verified-only", key="export.verified_only", is_flag=True)
@setting("--decontaminate", key="export.decontaminate", metavar="REPORT",
         type=click.Path(dir_okay=False, exists=True))
@setting("--drop-ambiguous", key="export.drop_ambiguous", is_flag=True)
@CONFIG
@SET
@click.pass_context
def export(ctx: click.Context, run_dir: Path, out: Path, config_file: Path | None,
           overrides: tuple[str, ...]) -> None:
    """Export a round of a filtered run as multiple-choice items (gold at a seeded position)."""
    from advfilter.pipeline.export import export_run

    run = RunStore(resolve_run(run_dir))
    cfg = run_config(run, config_file, overrides_of(ctx, overrides))
    s = export_run(cfg, run, out)
    if cfg.export.format == "lm-eval":
        click.echo(f"run it with: lm_eval --model hf --model_args pretrained=MODEL "
                   f"--include_path {out} --tasks {s.name}")
    if s.splits:
        click.echo("splits: " + ", ".join(f"{k}={v}" for k, v in s.splits.items()))
    if s.decontaminated:
        click.echo(f"decontaminated: left out {s.decontaminated} flagged items")
    if cfg.export.drop_ambiguous:
        click.echo(f"ambiguous: left out {s.ambiguous} items people have not kept "
                   f"(filter.ambiguous_margin {cfg.filter.ambiguous_margin})")
    click.echo(f"export: {s.items} items to {out}")


@main.command()
@RUN
@click.option("--against", "against", multiple=True, metavar="FILE [FILE ...]",
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Evaluation sets: HellaSwag JSONL (e.g. its val and test), JSONL with a text "
                   "field, or plain text (a document per line).")
@setting("--ngram", key="contamination.ngram")
@click.option("--round", "round_n", type=int, help="Round to check (default: the last).")
@click.option("--out", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Report JSON (default: RUN_DIR/contamination.json).")
@CONFIG
@SET
@click.pass_context
def contamination(ctx: click.Context, run_dir: Path | None, against: tuple[Path, ...],
                  round_n: int | None, out: Path | None, config_file: Path | None,
                  overrides: tuple[str, ...]) -> None:
    """N-gram overlap of a run's items (context + each ending) with evaluation sets and across its own
    splits (validation and test against train, test against validation). Writes a JSON report
    (items, flagged, by_file, by_split, flagged_items) for `export --decontaminate`."""
    from advfilter.gauges.contamination import contamination as check
    from advfilter.core.store import write_json

    run = RunStore(resolve_run(run_dir))
    cfg = run_config(run, config_file, overrides_of(ctx, overrides))
    report = check(run, list(against), cfg.contamination.ngram, round_n)
    out = out or run.path("contamination.json")
    write_json(out, report)
    click.echo(f"contamination ({report['n']}-grams, round {report['round']}): "
               f"{report['flagged']} of {report['items']} items flagged")
    for name, count in report["by_file"].items():
        click.echo(f"  {name}: {count}")
    for split, count in report["by_split"].items():
        click.echo(f"  {split} vs earlier splits: {count}")
    click.echo(f"report: {out} (export --decontaminate {out} leaves the flagged items out)")
