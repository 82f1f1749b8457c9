"""``annotate push / pull / status``: human verification in Label Studio."""
from __future__ import annotations

from pathlib import Path

import click

from advfilter.cli import CONFIG, RUN, SET, main, overrides_of, resolve_run, run_config
from advfilter.cli.options import setting
from advfilter.core.layout import ANNOTATION_STATE
from advfilter.core.store import RunStore
from annotation.quality import kappa_text


@main.group()
def annotate() -> None:
    """Human verification in Label Studio: push items, pull answers, see the status.

    The server comes from --url or LABEL_STUDIO_URL, the API key from LABEL_STUDIO_API_KEY
    only (never a flag; never printed).
    """


_URL = click.option("--url", metavar="URL", help="Label Studio server (default: $LABEL_STUDIO_URL).")


@annotate.command()
@RUN
@_URL
@click.option("--round", "round_n", type=int, help="Round to annotate (default: the last).")
@click.option("--project", help="Project title (default: 'advfilter RUN_NAME RUN_ID').")
@click.option("--limit", type=int, help="Push only the first K items.")
@setting("--overlap", key="annotate.overlap",
         text="Annotations wanted per task (a later push keeps the first one's).")
@setting("--order", key="annotate.order",
         text="items: as exported; ambiguous: the likeliest second answers first (a later push "
              "keeps the first one's).")
@CONFIG
@SET
@click.pass_context
def push(ctx: click.Context, run_dir: Path, url: str | None, round_n: int | None, project: str | None,
         limit: int | None, config_file: Path | None, overrides: tuple[str, ...]) -> None:
    """Create or reuse the project and import the round's items; pushing again adds no duplicates."""
    from annotation.client import Server
    from annotation.workflow import push as do_push

    run = RunStore(resolve_run(run_dir))
    dotted = overrides_of(ctx, overrides)
    a = run_config(run, config_file, dotted).annotate
    first = not run.path(ANNOTATION_STATE).exists()
    chosen = a.overlap if first or "annotate.overlap" in dotted or config_file else None  # else: as before
    order = a.order if first or "annotate.order" in dotted or config_file else None
    s = do_push(run, Server(url), round_n, project, limit, chosen, a.batch_size, order)
    click.echo(f"push: project '{s.project}' (id {s.project_id}): {s.imported} tasks imported, "
               f"{s.already_there} already there, {s.items} items")


def _print_pull(s) -> None:
    decisions = ", ".join(f"{k}={v}" for k, v in s.decisions.items()) or "none yet"
    click.echo(f"tasks: {s.tasks}, annotated: {s.annotated_tasks}, annotations: {s.annotations} "
               f"({s.new_annotations} new)")
    for a in s.annotators:
        agreement = "-" if a.agreement is None else f"{a.agreement:.2f}"
        click.echo(f"  annotator {a.user}: {a.tasks} tasks, accuracy {a.accuracy:.2f}, "
                   f"agreement with the majority {agreement}{'  (votes dropped)' if a.dropped else ''}")
    agreement = kappa_text(s.kappa) if s.kappa != s.kappa else \
        f"{kappa_text(s.kappa)} (all annotators: {kappa_text(s.kappa_all)})"
    click.echo(f"Fleiss' kappa: {agreement}; decisions: {decisions}")
    click.echo(f"items: {s.decisions.get('keep', 0)} verified, {s.open} open, {s.revised} revised "
               f"(a distractor replaced), {s.decisions.get('drop', 0)} dropped")
    if s.human_answers:
        click.echo(f"human accuracy: {s.human_accuracy:.3f} over {s.human_answers} answers")


def _pull_command(write: bool, doc: str) -> click.Command:
    """``pull`` (``write``: records answers and decisions) or ``status`` (reads only)."""
    @RUN
    @_URL
    @CONFIG
    @SET
    @click.pass_context
    def command(ctx: click.Context, run_dir: Path | None, url: str | None, config_file: Path | None,
                overrides: tuple[str, ...]) -> None:
        from annotation.client import Server
        from annotation.workflow import pull as do_pull

        run = RunStore(resolve_run(run_dir))
        cfg = run_config(run, config_file, overrides_of(ctx, overrides)).annotate
        _print_pull(do_pull(run, Server(url), write=write, cfg=cfg))

    command.__doc__ = doc
    return command


annotate.command(name="pull")(_pull_command(
    True, "Fetch answers into annotations.jsonl, decide keep / drop / re-annotate per item."))
annotate.command(name="status")(_pull_command(
    False, "Tasks pushed, annotated, and agreement so far (writes nothing)."))
