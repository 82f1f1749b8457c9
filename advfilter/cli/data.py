"""``export``: a filtered round in the formats other tools read."""
from __future__ import annotations

from pathlib import Path

import click

from advfilter.cli import RUN, main
from advfilter.store import RunStore, write_jsonl


@main.command()
@RUN
@click.option("--format", "fmt", type=click.Choice(["hellaswag", "swag", "hf", "lm-eval"]),
              default="hellaswag", show_default=True,
              help="hellaswag: JSONL; swag: CSV; hf: DatasetDict folder; lm-eval: task folder.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output file (hellaswag, swag) or folder (hf, lm-eval).")
@click.option("--round", "round_n", type=int, help="Round to export (default: the last; 0 = random).")
@click.option("--split", default="train", show_default=True,
              help="Value of the split field (hellaswag, swag; hf splits by video).")
@click.option("--name", help="Task / dataset name (default: advfilter_RUN_NAME).")
@click.option("--verified-only", is_flag=True,
              help="Only items people kept (annotate pull's decisions.jsonl).")
def export(run_dir: Path, fmt: str, out: Path, round_n: int | None, split: str, name: str | None,
           verified_only: bool) -> None:
    """Export a round of a filtered run as multiple-choice items (gold at a seeded position)."""
    from advfilter import export as ex

    run = RunStore(run_dir)
    records = ex.items(run, round_n, split)
    if verified_only:
        from annotation.workflow import kept

        keep = kept(run)
        records = (r for r in records if r["context_id"] in keep)
    name = name or "advfilter_" + "".join(c if c.isalnum() else "_" for c in run.root.name)
    if fmt == "hellaswag":
        n = write_jsonl(out, records)
    elif fmt == "swag":
        n = ex.write_swag(records, out)
    elif fmt == "lm-eval":
        n = ex.write_lm_eval(records, out, name)
        click.echo(f"run it with: lm_eval --model hf --model_args pretrained=MODEL "
                   f"--include_path {out} --tasks {name}")
    else:
        counts = ex.write_hf(records, out, run.manifest.get("seed", 0), name,
                             run.manifest.get("config", {}).get("generate", {}).get("generator", "?"))
        n = sum(counts.values())
        click.echo("splits: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    click.echo(f"export: {n} items to {out}")
