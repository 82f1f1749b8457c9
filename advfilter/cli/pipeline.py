"""``generate``, ``filter`` and ``report``: the stages that build a run directory."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from advfilter.cli import CONFIG, RUN, SET, main, overrides_of, resolve_run, run_config
from advfilter.core.config import Config, load_config
from advfilter.core.errors import ConfigError
from advfilter.core.runs import default_run_dir
from advfilter.sources import sources
from advfilter.core.store import RunStore

if TYPE_CHECKING:  # the stages import spaCy, torch and Ray: only when a command runs
    from advfilter.contexts import ContextsSummary
    from advfilter.generate import GenerateSummary


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
@click.option("--input", "inputs", multiple=True, metavar="FILE [FILE ...]",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Corpus file(s). Without it, --source activitynet downloads the public "
                   "ActivityNet Captions release once into $ADVFILTER_HOME (~/.cache/advfilter).")
@click.option("--split", "release_split", type=click.Choice(["train", "val_1", "val_2"]),
              help="ActivityNet Captions file read without --input "
                   "(config: sources.activitynet.split; val_1).")
@click.option("--labels", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Activity labels: ActivityNet v1.3's activity_net.v1-3.min.json or a "
                   "{video_id: label} JSON (default: v1.3's, fetched once, for videos without one).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory to create or resume (default: runs/<source>-<split or input name>).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML config (defaults: configs/default.yaml).")
@click.option("--seed", type=int, help="Seed for folds and sampling (config: seed).")
@click.option("--folds", type=int, help="Cross-fitting folds K (config: contexts.folds).")
@click.option("--generator", metavar="NAME",
              help="lstm | retrieval | phi2 | hf:NAME_OR_PATH | random, or a comma-separated "
                   "mixture such as lstm,retrieval (config: generate.generator).")
@click.option("--num-candidates", type=int, help="Endings per context (config: generate.num_candidates).")
@click.option("--workers", type=int, help="Ray workers (config: generate.workers; 0 = auto).")
@click.option("--ray-address", metavar="ADDR", help="Join this Ray cluster instead of starting one.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Dotted config override, e.g. --set generate.lstm.hidden_dim=512 (repeatable).")
@click.option("--stage", type=click.Choice(["contexts", "candidates"]), default=None,
              help="Stop after this stage (contexts: after writing contexts.parquet).")
@click.option("--overwrite", is_flag=True, help="Delete an existing run directory first.")
def generate(source: str, inputs: tuple[Path, ...], release_split: str | None, labels: Path | None,
             out: Path | None, config_file: Path | None,
             seed: int | None, folds: int | None, generator: str | None,
             num_candidates: int | None, workers: int | None, ray_address: str | None,
             overrides: tuple[str, ...], stage: str | None, overwrite: bool) -> None:
    """Read a corpus into contexts and sample candidate endings for them, in RUN_DIR.

    Contexts: ctx_a (a sentence), ctx_b (the subject of the next), the gold ending (its verb
    phrase). Candidates: endings from a generator fitted on the other folds, with LM
    features. Finished stages of an existing run directory are reused when made with the
    same inputs and settings, a killed generation resumes, other settings are refused.
    """
    from advfilter.contexts import build_contexts
    from advfilter.generate import generate_candidates

    cfg = load_config(config_file, overrides_of(
        overrides, seed=seed, contexts__folds=folds, generate__generator=generator,
        generate__num_candidates=num_candidates, generate__workers=workers,
        sources__activitynet__split=release_split))
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
    ``--input`` as given (named by the first file), else the ActivityNet Captions release's
    split, fetched into the cache (named by the split)."""
    if inputs:
        return inputs, inputs[0].stem
    if source != "activitynet":
        raise ConfigError(f"--source {source} needs --input FILE (only activitynet can be downloaded)")
    from advfilter.sources.release import captions_file

    split = cfg.sources.activitynet.split
    return [captions_file(cfg.sources.activitynet, split)], split


@main.command(name="filter")
@RUN
@click.option("--rounds", type=int, help="Rounds of Algorithm 1 (config: filter.rounds; default 20).")
@click.option("--discriminators", metavar="A,B,...",
              help="Comma-separated: mlp, bow, cnn, bilstm, aflite, bert (config: filter.discriminators).")
@click.option("--negatives", type=int, help="Negatives per item (config: filter.negatives; default 3).")
@click.option("--max-swaps", type=int, help="Swaps per test context and round (default 2).")
@click.option("--driver", type=click.Choice(["ensemble", "best"]), help="Model that drives swaps.")
@click.option("--probe-every", type=int, metavar="N",
              help="Run the tfidf probe every N rounds into af/probe.jsonl (config: filter.probe_every).")
@click.option("--device", help="auto | cpu | cuda (config: filter.device).")
@click.option("--score-workers", type=int,
              help="Ray actors scoring the pools; 0 = in this process (config: filter.score_workers).")
@click.option("--ray-address", metavar="ADDR", help="Score the pools on this Ray cluster.")
@click.option("--seed", type=int, help="Seed (default: the run's).")
@CONFIG
@SET
def filter_command(run_dir: Path, rounds: int | None, discriminators: str | None,
                   negatives: int | None, max_swaps: int | None, driver: str | None,
                   probe_every: int | None, device: str | None, score_workers: int | None,
                   ray_address: str | None, seed: int | None,
                   config_file: Path | None, overrides: tuple[str, ...]) -> None:
    """Adversarial Filtering (SWAG's Algorithm 1) over the run's candidates.

    Prints one line per round; writes af/round-XX.parquet and af/metrics.jsonl. A killed run
    resumes from its last complete round; more --rounds extend a finished one.
    """
    from advfilter.filtering import adversarial_filter

    names = [d.strip() for d in discriminators.split(",")] if discriminators else None
    dotted = overrides_of(overrides, filter__rounds=rounds, filter__discriminators=names,
                        filter__negatives=negatives, filter__max_swaps=max_swaps,
                        filter__driver=driver, filter__probe_every=probe_every,
                        filter__device=device, filter__score_workers=score_workers, seed=seed)
    run = RunStore(resolve_run(run_dir, "candidates"))
    cfg = run_config(run, config_file, dotted)

    def line(m: dict[str, Any]) -> None:
        accs = " ".join(f"{k}={v:.3f}{'!' if k in m['below_chance'] else ''}"
                        for k, v in m["accuracy"].items())
        probe = "".join(f" | {k} {v:.3f}" for k, v in m.get("probe", {}).items())
        click.echo(f"round {m['round']:2d}: {accs} | driver {m['driver']} | "
                   f"changed {m['changed_frac']:.3f} | swaps {m['swaps']}{probe} | "
                   f"{m['train_s'] + m['score_s'] + m['bookkeeping_s']:.1f} s")
        if m["below_chance"]:
            click.echo(f"  overshoot: {', '.join(m['below_chance'])} below chance by more than "
                       f"filter.stop.margin ({cfg.filter.stop.margin}): negatives more typical than the gold")

    summary = adversarial_filter(cfg, run, on_round=line, ray_address=ray_address)
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
        from advfilter.finetune_report import FIGURES, finetune_report

        page = finetune_report(finetune_out)
        click.echo(f"report: {page} (with {', '.join(FIGURES)})")
        return
    from advfilter import report as rep

    run = RunStore(resolve_run(run_dir))
    click.echo(rep.table(run))
    out = out or run.path("af/report.png")
    rep.plot(run, out)
    click.echo(f"report: {out}")
