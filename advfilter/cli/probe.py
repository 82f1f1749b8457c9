"""``probe``: how hard the items are for models outside the loop."""
from __future__ import annotations

from pathlib import Path

import click

from advfilter.cli import SET, main, overrides_of, resolve_run, run_config
from advfilter.core.config import load_config
from advfilter.core.errors import ConfigError
from advfilter.core.store import RunStore


@main.command()
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Run directory: probe its rounds, results to af/probe.jsonl (default: the "
                   "latest finished run under runs/).")
@click.option("--items", "items_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Any HellaSwag-format JSONL instead (e.g. HellaSwag's own items).")
@click.option("--rounds", help="0,last (default) | all | a comma-separated list (config: probe.rounds).")
@click.option("--probes", "names", metavar="A,B", help="tfidf, encoder (config: probe.probes; both).")
@click.option("--encoder", metavar="NAME_OR_PATH",
              help="Encoder of the encoder probe (config: probe.encoder.model; all-MiniLM-L6-v2).")
@click.option("--both-ways", is_flag=True, default=None,
              help="Also train on the test half and test on the train half: every item tested, "
                   "half the variance, twice the time (config: probe.both_ways).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML config (a run's own by default; the probe section is read).")
@SET
def probe(run_dir: Path | None, items_file: Path | None, rounds: str | None, names: str | None,
          encoder: str | None, both_ways: bool | None, config_file: Path | None,
          overrides: tuple[str, ...]) -> None:
    """Held-out accuracy of a TF-IDF + logistic-regression probe (ending only, and with the
    context) and of a fine-tuned pretrained cross-encoder, each trained on half the videos
    and tested on the other half (chance: 1 / endings). Low is hard; below chance is an
    artifact of filtering, not success."""
    from advfilter.probe import probe_items, probe_run
    from advfilter.report import source_lines

    if run_dir is not None and items_file is not None:
        raise ConfigError("give one of --run RUN_DIR and --items FILE, not both")
    dotted = overrides_of(overrides, probe__rounds=rounds, probe__encoder__model=encoder,
                          probe__both_ways=both_ways,
                          probe__probes=[n.strip() for n in names.split(",")] if names else None)

    def line(r) -> None:
        where = f"round {r.round:2d}" if r.round is not None else "items"
        click.echo(f"{where}: {r.probe:14} acc={r.acc:.3f} ± {r.stderr:.3f} (chance {r.chance:.2f}; "
                   f"train {r.n_train}, test {r.n_test}; {r.seconds:.1f} s)")
        for extra in source_lines(r.by_source):
            click.echo(extra)

    if items_file is None:
        run = RunStore(resolve_run(run_dir))
        probe_run(run_config(run, config_file, dotted), run, on_result=line)
        click.echo(f"probe: results in {run.path('af/probe.jsonl')}")
    else:
        probe_items(load_config(config_file, dotted), items_file, on_result=line)
