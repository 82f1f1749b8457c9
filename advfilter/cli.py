"""The ``advfilter`` command line: parses arguments, calls a stage function, prints a summary.

Every AdvfilterError becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import click

from advfilter.config import load_config, parse_override
from advfilter.contexts import ContextsSummary, build_contexts
from advfilter.errors import AdvfilterError
from advfilter.generate import GenerateSummary, generate_candidates
from advfilter.sources import sources
from advfilter.store import RunStore

# Options that take one or more values (``--input a.json b.json``), which click cannot express.
_MULTI_VALUE = ("--input",)


def expand_multi_value(args: Sequence[str]) -> list[str]:
    """Rewrite ``--input a b`` as ``--input a --input b`` so click's ``multiple=True`` reads it."""
    out: list[str] = []
    current = None
    for arg in args:
        if arg.startswith("-"):
            current = arg if arg in _MULTI_VALUE else None
            if current is None:
                out.append(arg)
        elif current:
            out += [current, arg]
        else:
            out.append(arg)
    return out


class _Cli(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_multi_value(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AdvfilterError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="advfilter")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Build adversarially filtered multiple-choice datasets (SWAG / HellaSwag style)."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def _print_contexts(summary: ContextsSummary, run: RunStore) -> None:
    if summary.reused:
        click.echo(f"contexts: reusing {run.path('contexts.parquet')} ({summary.contexts} contexts)")
        return
    click.echo(f"contexts: {summary.contexts} from {summary.pairs} sentence pairs "
               f"of {summary.videos} videos ({summary.seconds:.1f} s, parser {summary.parser or '-'})")
    skipped = ", ".join(f"{k}={v}" for k, v in summary.skipped.items()) or "none"
    click.echo(f"skipped pairs: {skipped}")
    click.echo("contexts per fold: " + " ".join(f"{k}={v}" for k, v in summary.folds.items()))


def _print_candidates(summary: GenerateSummary, run: RunStore) -> None:
    if summary.reused:
        click.echo(f"candidates: reusing {run.path('candidates')} ({summary.candidates} candidates)")
        return
    dropped = ", ".join(f"{k}={v}" for k, v in summary.dropped.items()) or "none"
    click.echo(f"candidates: {summary.candidates} for {summary.kept_contexts} of {summary.contexts} "
               f"contexts in {summary.shards} shards ({summary.resumed_shards} resumed, "
               f"{summary.seconds:.1f} s)")
    click.echo(f"short contexts (fewer candidates than asked): {summary.short_contexts}")
    click.echo(f"dropped samples: {dropped}")


@main.command()
@click.option("--source", default="activitynet", show_default=True,
              type=click.Choice(sources.names()), help="Corpus format of the input files.")
@click.option("--input", "inputs", multiple=True, required=True, metavar="FILE [FILE ...]",
              type=click.Path(dir_okay=False, path_type=Path), help="Corpus file(s).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run directory to create or resume.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML config (defaults: configs/default.yaml).")
@click.option("--seed", type=int, help="Seed for folds and sampling (config: seed).")
@click.option("--folds", type=int, help="Cross-fitting folds K (config: contexts.folds).")
@click.option("--generator", metavar="NAME",
              help="lstm | phi2 | hf:NAME_OR_PATH | random (config: generate.generator).")
@click.option("--num-candidates", type=int, help="Endings per context (config: generate.num_candidates).")
@click.option("--workers", type=int, help="Ray workers (config: generate.workers; 0 = auto).")
@click.option("--ray-address", metavar="ADDR", help="Join this Ray cluster instead of starting one.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Dotted config override, e.g. --set generate.lstm.hidden_dim=512 (repeatable).")
@click.option("--stage", type=click.Choice(["contexts", "candidates"]), default=None,
              help="Stop after this stage (contexts: after writing contexts.parquet).")
@click.option("--overwrite", is_flag=True, help="Delete an existing run directory first.")
def generate(source: str, inputs: tuple[Path, ...], out: Path, config_file: Path | None,
             seed: int | None, folds: int | None, generator: str | None,
             num_candidates: int | None, workers: int | None, ray_address: str | None,
             overrides: tuple[str, ...], stage: str | None, overwrite: bool) -> None:
    """Read a corpus into contexts and sample candidate endings for them, in RUN_DIR.

    Contexts: ctx_a (a sentence), ctx_b (the subject of the next), the gold ending (its verb
    phrase). Candidates: endings from a generator fitted on the other folds, with LM
    features. Finished stages of an existing run directory are reused when made with the
    same inputs and settings, a killed generation resumes, other settings are refused.
    """
    dotted = dict(parse_override(o) for o in overrides)
    for key, value in [("seed", seed), ("contexts.folds", folds), ("generate.generator", generator),
                       ("generate.num_candidates", num_candidates), ("generate.workers", workers)]:
        if value is not None:
            dotted[key] = value
    cfg = load_config(config_file, dotted)
    with RunStore.open(out, overwrite=overwrite) as run:
        _print_contexts(build_contexts(cfg, run, source, list(inputs)), run)
        if stage != "contexts":
            _print_candidates(generate_candidates(cfg, run, ray_address), run)
    click.echo(f"run directory: {out}")


def _not_implemented(name: str, summary: str) -> click.Command:
    """A placeholder command that says so and exits 2 (never pretends to work)."""

    @click.command(name=name, help=f"{summary} (not implemented yet)",
                   context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        click.echo(f"error: advfilter {name} is not implemented yet", err=True)
        sys.exit(2)

    return command


for _name, _summary in [
    ("filter", "Adversarial Filtering rounds over generated candidates."),
    ("export", "Export a filtered round (HellaSwag JSONL, SWAG CSV, HF datasets, lm-eval)."),
    ("report", "Plot and tabulate per-round discriminator accuracy."),
    ("annotate", "Human verification in Label Studio (push, pull, status)."),
    ("finetune-phi2", "LoRA fine-tuning of Phi-2 on an exported dataset."),
    ("evaluate", "Zero-shot multiple-choice accuracy (acc / acc_norm) of a causal LM."),
    ("compare", "Side-by-side table of two fine-tuning runs."),
]:
    main.add_command(_not_implemented(_name, _summary))
