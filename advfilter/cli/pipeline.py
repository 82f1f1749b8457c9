"""``generate``, ``filter`` and ``report``: the stages that build a run directory."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from advfilter.cli import CONFIG, PRESET, RUN, SET, main, overrides_of, resolve_run, run_config
from advfilter.cli.options import comma_list, setting
from advfilter.core.config import Config, load_config
from advfilter.core.errors import ConfigError
from advfilter.core.runs import default_run_dir
from advfilter.sources import sources
from advfilter.core.store import RunStore

if TYPE_CHECKING:  # the stages import spaCy, torch and Ray: only when a command runs
    from advfilter.pipeline.contexts import ContextsSummary
    from advfilter.pipeline.generate import GenerateSummary


def _print_contexts(summary: ContextsSummary, run: RunStore) -> None:
    if summary.reused:
        click.echo(f"contexts: reusing {run.path('contexts.parquet')} ({summary.contexts} contexts)")
        return
    click.echo(f"contexts: {summary.contexts} from {summary.pairs} sentence pairs "
               f"of {summary.videos} videos ({summary.seconds:.1f} s, parser {summary.parser or '-'})")
    skipped = ", ".join(f"{k}={v}" for k, v in summary.skipped.items()) or "none"
    click.echo(f"skipped pairs: {skipped}")
    click.echo("contexts per fold: " + " ".join(f"{k}={v}" for k, v in summary.folds.items()))
    if summary.unlabelled:
        shown = ", ".join(summary.unlabelled[:5]) + (", ..." if len(summary.unlabelled) > 5 else "")
        click.echo(f"warning: {len(summary.unlabelled)} videos have no activity label ({shown}); their "
                   "items carry an empty activity_label (pass --labels FILE to give them one)", err=True)


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


def _generator_names() -> list[str]:
    from generators import generators

    return [*(n for n in generators.names() if n != "mixture"), "phi2", "hf:NAME_OR_PATH",
            "A,B (a mixture of them)"]


@main.command()
@click.option("--source", default="activitynet", show_default=True,
              type=click.Choice(sources.names()), help="Corpus format of the input files.")
@click.option("--input", "inputs", multiple=True, metavar="FILE [FILE ...]",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Corpus file(s). Without it, --source activitynet downloads the public "
                   "ActivityNet Captions release once into $ADVFILTER_HOME (~/.cache/advfilter).")
@setting("--captions", "--split", key="sources.activitynet.captions",
         text="ActivityNet Captions file read without --input (--split: its older name).")
@click.option("--labels", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Activity labels: ActivityNet v1.3's activity_net.v1-3.min.json or a "
                   "{video_id: label} JSON (default: v1.3's, fetched once, for videos without one).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory to create or resume (default: runs/<source>-<captions file or input name>).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML config (defaults: configs/default.yaml).")
@PRESET
@setting("--seed", key="seed", text="Seed for folds and sampling.")
@setting("--folds", key="contexts.folds")
@setting("--generator", key="generate.generator", metavar="NAME", names=_generator_names,
         text="Who writes the candidate endings.")
@setting("--num-candidates", key="generate.num_candidates", text="Endings per context.")
@setting("--workers", key="generate.workers")
@click.option("--ray-address", metavar="ADDR", help="Join this Ray cluster instead of starting one.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Dotted config override, e.g. --set generate.lstm.hidden_dim=512 (repeatable).")
@click.option("--stage", type=click.Choice(["contexts", "candidates"]), default=None,
              help="Stop after this stage (contexts: after writing contexts.parquet).")
@click.option("--overwrite", is_flag=True, help="Delete an existing run directory first.")
@click.pass_context
def generate(ctx: click.Context, source: str, inputs: tuple[Path, ...], labels: Path | None,
             out: Path | None, config_file: Path | None, preset: str | None, ray_address: str | None,
             overrides: tuple[str, ...], stage: str | None, overwrite: bool) -> None:
    """Read a corpus into contexts and sample candidate endings for them, in RUN_DIR.

    Contexts: ctx_a (a sentence), ctx_b (the subject of the next), the gold ending (its verb
    phrase). Candidates: endings from a generator fitted on the other folds, with LM
    features. Finished stages of an existing run directory are reused when made with the
    same inputs and settings, a killed generation resumes, other settings are refused.
    """
    from advfilter.pipeline.contexts import build_contexts
    from advfilter.pipeline.generate import generate_candidates
    from generators.base import generator_settings

    cfg = load_config(config_file, overrides_of(ctx, overrides), preset=preset)
    if stage != "contexts":
        generator_settings(cfg.generate)  # a bad generator spec fails before any work
    files, name = corpus_files(source, list(inputs), cfg)
    if out is None:
        out = default_run_dir(source, name)
        click.echo(f"run directory: {out} (no --out given)")
    with RunStore.open(out, overwrite=overwrite) as run:
        _print_contexts(build_contexts(cfg, run, source, files, labels), run)
        if stage != "contexts":
            _print_candidates(generate_candidates(cfg, run, ray_address), run)
    click.echo(f"run directory: {out}")


def corpus_files(source: str, inputs: list[Path], cfg: Config) -> tuple[list[Path], str]:
    """The corpus files to read and the name a default run directory takes from them:
    ``--input`` as given (named by the first file), else a captions file of the ActivityNet
    Captions release, fetched into the cache (named by the file: ``val_1``)."""
    if inputs:
        return inputs, inputs[0].stem
    if source != "activitynet":
        raise ConfigError(f"--source {source} needs --input FILE (only activitynet can be downloaded)")
    from advfilter.sources.release import captions_file

    captions = cfg.sources.activitynet.captions
    return [captions_file(cfg.sources.activitynet, captions)], captions


def _discriminator_names() -> list[str]:
    from discriminators import discriminators

    return discriminators.names()


@main.command(name="filter")
@RUN
@setting("--rounds", key="filter.rounds", text="Rounds of Algorithm 1.")
@setting("--discriminators", key="filter.discriminators", metavar="A,B,...", convert=comma_list,
         names=_discriminator_names, text="Comma-separated; two or more are joined by an ensemble.")
@setting("--negatives", key="filter.negatives")
@setting("--max-swaps", key="filter.max_swaps")
@setting("--driver", key="filter.driver", text="The model whose scores drive the swaps.")
@setting("--probe-every", key="filter.probe_every", metavar="N")
@setting("--device", key="filter.device")
@setting("--score-workers", key="filter.score_workers")
@click.option("--ray-address", metavar="ADDR", help="Score the pools on this Ray cluster.")
@click.option("--restart", is_flag=True, help=(
    "Discard the run's rounds (not its bank) and filter anew: how to filter a run again with "
    "other settings."))
@setting("--seed", key="seed", text="Seed (the run's unless given).")
@CONFIG
@PRESET
@SET
@click.pass_context
def filter_command(ctx: click.Context, run_dir: Path, ray_address: str | None, restart: bool,
                   config_file: Path | None, preset: str | None, overrides: tuple[str, ...]) -> None:
    """Adversarial Filtering (SWAG's Algorithm 1) over the run's candidates.

    Prints one line per round; writes af/round-XX.parquet and af/metrics.jsonl. A killed run
    resumes from its last complete round; more --rounds extend a finished one; other
    settings need --restart.
    """
    from advfilter.pipeline.algorithm1 import Members
    from advfilter.pipeline.filter import adversarial_filter, restart as discard_rounds

    run = RunStore(resolve_run(run_dir, "candidates"))
    cfg = run_config(run, config_file, overrides_of(ctx, overrides), preset)
    if restart:
        Members.of(cfg.filter)  # bad settings fail before anything is discarded
        discard_rounds(run)

    def line(m: dict[str, Any]) -> None:
        accs = " ".join(f"{k}={v:.3f}{'!' if k in m['below_chance'] else ''}"
                        for k, v in m["accuracy"].items())
        probe = "".join(f" | {k} {v:.3f}" for k, v in m.get("probe", {}).items())
        click.echo(f"round {m['round']:2d}: {accs} | driver {m['driver']} | "
                   f"changed {m['changed_frac']:.3f} | swaps {m['swaps']} | "
                   f"ambiguous {m.get('ambiguous', 0):.3f}{probe} | "
                   f"{m['train_s'] + m['score_s'] + m['bookkeeping_s']:.1f} s")
        if m["below_chance"]:
            click.echo(f"  overshoot: {', '.join(m['below_chance'])} below chance by more than "
                       f"filter.stop.margin ({cfg.filter.stop.margin}): negatives more typical than the gold")

    summary = adversarial_filter(cfg, run, on_round=line, ray_address=ray_address)
    if summary.went_on:
        click.echo(f"filter: the run had stopped after round {summary.resumed_from} ({summary.went_on}); "
                   f"went on to round {summary.rounds} as --rounds asked, the stop rule off")
    stopped = f"; stopped early: {summary.stopped}" if summary.stopped else ""
    if summary.reused:
        click.echo(f"filter: already finished {summary.rounds} rounds{stopped}; nothing to do")
        return
    click.echo(f"filter: {summary.rounds} rounds over {summary.contexts} contexts "
               f"({summary.short_pool} with too few candidates left out; resumed after round "
               f"{summary.resumed_from}; {summary.seconds:.1f} s){stopped}")


@main.command()
@RUN
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="PNG to write (default: RUN_DIR/af/report.png).")
@click.option("--finetune", "finetune_out", type=click.Path(file_okay=False, exists=True, path_type=Path),
              metavar="OUT", help="Report a finetune-phi2 --out folder instead: loss curves, confusion "
                                  "matrix, per-activity accuracy (PNGs) and OUT/report.html.")
def report(run_dir: Path, out: Path | None, finetune_out: Path | None) -> None:
    """Table and PNG of a filter run: accuracy per round per discriminator, ending lengths
    (or, with --finetune, the evaluation report of a fine-tuning run)."""
    if finetune_out is not None:
        from advfilter.lm.report import FIGURES, finetune_report

        page = finetune_report(finetune_out)
        click.echo(f"report: {page} (with {', '.join(FIGURES)})")
        return
    from advfilter.pipeline import report as rep

    run = RunStore(resolve_run(run_dir))
    click.echo(rep.table(run))
    out = out or run.path("af/report.png")
    rep.plot(run, out)
    click.echo(f"report: {out}")
