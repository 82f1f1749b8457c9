"""The ``advfilter`` command line: parses arguments, calls a stage function, prints a summary.

One module per group of commands (as spaCy's ``cli/``); this one holds the group, the shared
options and the error handling: every AdvfilterError becomes one line on stderr and exit 2.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import click

from advfilter.cli.options import shortcuts
from advfilter.core.config import Config, load_config, parse_override
from advfilter.core.errors import AdvfilterError, RunError
from advfilter.core.registry import import_modules
from advfilter.core.store import RunStore

# Options that take one or more values (``--input a.json b.json``), which click cannot express.
_MULTI_VALUE = ("--input", "--against")


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


def run_config(run: RunStore, config_file: Path | None, dotted: dict[str, Any],
               preset: str | None = None) -> Config:
    """The config a run was made with, updated by a preset, a YAML file and dotted overrides."""
    if not run.manifest:
        raise RunError(f"{run.root}: no manifest.json; is this a run directory?")
    return load_config(config_file, dotted, base=run.manifest.get("config"), preset=preset)


def overrides_of(ctx: click.Context, overrides: tuple[str, ...]) -> dict[str, Any]:
    """``--set`` overrides, then the values of the command's setting flags (which win)."""
    return {**dict(parse_override(o) for o in overrides), **shortcuts(ctx)}


RUN = click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
                   help="Run directory made by advfilter generate (default: the latest finished "
                        "run under runs/).")


def resolve_run(run_dir: Path | None, needs: str = "filter") -> Path:
    """``run_dir``, or the run under ``runs/`` whose ``needs`` stage finished last (said on
    stderr, so a script's stdout is unchanged)."""
    if run_dir is not None:
        return run_dir
    from advfilter.core.runs import latest_run

    found = latest_run(needs)
    click.echo(f"using run {found} (the latest with a finished {needs} stage)", err=True)
    return found


CONFIG = click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                       help="YAML config merged over the run's own.")
PRESET = click.option("--preset", metavar="NAME", help=(
    "Settings for a purpose, applied before --config and --set (which win): quick = a "
    "first look in minutes (advfilter/presets/)."))
SET = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                    help="Dotted config override, e.g. --set filter.driver=best (repeatable).")


import_modules(__name__, __path__)  # each module adds its commands to ``main``
