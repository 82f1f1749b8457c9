"""``probe``: how hard the items are for models outside the loop."""
from __future__ import annotations

from pathlib import Path

import click

from advfilter.cli import SET, main, overrides_of, resolve_run, run_config
from advfilter.cli.options import comma_list, setting
from advfilter.core.config import load_config
from advfilter.core.errors import ConfigError
from advfilter.core.store import RunStore


@main.command()
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Run directory: probe its rounds, results to af/probe.jsonl (default: the "
                   "latest finished run under runs/).")
@click.option("--items", "items_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Any HellaSwag-format JSONL instead (e.g. HellaSwag's own items).")
@setting("--rounds", key="probe.rounds")
@setting("--probes", key="probe.probes", metavar="A,B", convert=comma_list,
         text="Of tfidf, encoder, lm.")
@setting("--encoder", key="probe.encoder.model", metavar="NAME_OR_PATH", text="Encoder of the encoder probe.")
@setting("--lm", key="probe.lm.model", metavar="NAME_OR_PATH", text="Causal LM of the lm probe.")
@setting("--both-ways", key="probe.both_ways", is_flag=True)
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML config (a run's own by default; the probe section is read).")
@SET
@click.pass_context
def probe(ctx: click.Context, run_dir: Path | None, items_file: Path | None, config_file: Path | None,
          overrides: tuple[str, ...]) -> None:
    """Held-out accuracy of a TF-IDF + logistic-regression probe (ending only, and with the
    context) and of a fine-tuned pretrained cross-encoder, each trained on half the videos
    and tested on the other half (chance: 1 / endings); with --probes ...,lm also of a causal
    LM zero-shot (acc_norm, as lm-evaluation-harness scores HellaSwag). Low is hard; below
    chance is an artifact of filtering, not success."""
    from advfilter.gauges.probe import probe_items, probe_run
    from advfilter.pipeline.report import source_lines

    if run_dir is not None and items_file is not None:
        raise ConfigError("give one of --run RUN_DIR and --items FILE, not both")
    dotted = overrides_of(ctx, overrides)

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
