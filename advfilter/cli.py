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
from advfilter.errors import AdvfilterError, RunError
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


def _run_config(run: RunStore, config_file: Path | None, dotted: dict[str, Any]):
    """The config a run was made with, updated by a YAML file and dotted overrides."""
    if not run.manifest:
        raise RunError(f"{run.root}: no manifest.json; is this a run directory?")
    return load_config(config_file, dotted, base=run.manifest.get("config"))


def _overrides(overrides: tuple[str, ...], **shortcuts: Any) -> dict[str, Any]:
    dotted = dict(parse_override(o) for o in overrides)
    dotted.update({k.replace("__", "."): v for k, v in shortcuts.items() if v is not None})
    return dotted


_RUN = click.option("--run", "run_dir", required=True,
                    type=click.Path(file_okay=False, exists=True, path_type=Path),
                    help="Run directory made by advfilter generate.")
_CONFIG = click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                       help="YAML config merged over the run's own.")
_SET = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                    help="Dotted config override, e.g. --set filter.driver=best (repeatable).")


@main.command(name="filter")
@_RUN
@click.option("--rounds", type=int, help="Rounds of Algorithm 1 (config: filter.rounds; default 20).")
@click.option("--discriminators", metavar="A,B,...", help="Comma-separated: mlp,bow,cnn,bilstm,bert.")
@click.option("--negatives", type=int, help="Negatives per item (config: filter.negatives; default 3).")
@click.option("--max-swaps", type=int, help="Swaps per test context and round (default 2).")
@click.option("--driver", type=click.Choice(["ensemble", "best"]), help="Model that drives swaps.")
@click.option("--seed", type=int, help="Seed (default: the run's).")
@_CONFIG
@_SET
def filter_command(run_dir: Path, rounds: int | None, discriminators: str | None,
                   negatives: int | None, max_swaps: int | None, driver: str | None,
                   seed: int | None, config_file: Path | None, overrides: tuple[str, ...]) -> None:
    """Adversarial Filtering (SWAG's Algorithm 1) over the run's candidates.

    Prints one line per round; writes af/round-XX.parquet and af/metrics.jsonl. A killed run
    resumes from its last complete round; more --rounds extend a finished one.
    """
    from advfilter.filtering import adversarial_filter

    names = [d.strip() for d in discriminators.split(",")] if discriminators else None
    dotted = _overrides(overrides, filter__rounds=rounds, filter__discriminators=names,
                        filter__negatives=negatives, filter__max_swaps=max_swaps,
                        filter__driver=driver, seed=seed)
    run = RunStore(run_dir)
    cfg = _run_config(run, config_file, dotted)

    def line(m: dict[str, Any]) -> None:
        accs = " ".join(f"{k}={v:.3f}" for k, v in m["accuracy"].items())
        click.echo(f"round {m['round']:2d}: {accs} | driver {m['driver']} | "
                   f"changed {m['changed_frac']:.3f} | swaps {m['swaps']} | "
                   f"{m['train_s'] + m['score_s'] + m['bookkeeping_s']:.1f} s")

    summary = adversarial_filter(cfg, run, on_round=line)
    if summary.reused:
        click.echo(f"filter: already finished {summary.rounds} rounds; nothing to do")
        return
    click.echo(f"filter: {summary.rounds} rounds over {summary.contexts} contexts "
               f"({summary.short_pool} with too few candidates left out; resumed after round "
               f"{summary.resumed_from}; {summary.seconds:.1f} s)")


@main.command()
@_RUN
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
        n = ex.write_hellaswag(records, out)
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


@main.group()
def annotate() -> None:
    """Human verification in Label Studio: push items, pull answers, see the status.

    The server comes from --url or LABEL_STUDIO_URL, the API key from LABEL_STUDIO_API_KEY
    only (never a flag; never printed).
    """


_URL = click.option("--url", metavar="URL", help="Label Studio server (default: $LABEL_STUDIO_URL).")


@annotate.command()
@_RUN
@_URL
@click.option("--round", "round_n", type=int, help="Round to annotate (default: the last).")
@click.option("--project", help="Project title (default: 'advfilter RUN_NAME RUN_ID').")
@click.option("--limit", type=int, help="Push only the first K items.")
@click.option("--overlap", type=int, default=1, show_default=True, help="Annotations wanted per task.")
def push(run_dir: Path, url: str | None, round_n: int | None, project: str | None,
         limit: int | None, overlap: int) -> None:
    """Create or reuse the project and import the round's items; pushing again adds no duplicates."""
    from annotation.client import Server
    from annotation.workflow import push as do_push

    s = do_push(RunStore(run_dir), Server(url), round_n, project, limit, overlap)
    click.echo(f"push: project '{s.project}' (id {s.project_id}): {s.imported} tasks imported, "
               f"{s.already_there} already there, {s.items} items")


def _print_pull(s) -> None:
    decisions = ", ".join(f"{k}={v}" for k, v in s.decisions.items()) or "none yet"
    click.echo(f"tasks: {s.tasks}, annotated: {s.annotated_tasks}, annotations: {s.annotations} "
               f"({s.new_annotations} new)")
    click.echo(f"Fleiss' kappa: {s.kappa:.3f}; decisions: {decisions}")


@annotate.command()
@_RUN
@_URL
def pull(run_dir: Path, url: str | None) -> None:
    """Fetch answers into annotations.jsonl, decide keep / drop / re-annotate per item."""
    from annotation.client import Server
    from annotation.workflow import pull as do_pull

    _print_pull(do_pull(RunStore(run_dir), Server(url)))


@annotate.command()
@_RUN
@_URL
def status(run_dir: Path, url: str | None) -> None:
    """Tasks pushed, annotated, and agreement so far (writes nothing)."""
    from annotation.client import Server
    from annotation.workflow import pull as do_pull

    _print_pull(do_pull(RunStore(run_dir), Server(url), write=False))


@main.command()
@_RUN
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="PNG to write (default: RUN_DIR/af/report.png).")
def report(run_dir: Path, out: Path | None) -> None:
    """Table and PNG of a filter run: accuracy per round per discriminator, ending lengths."""
    from advfilter import report as rep

    run = RunStore(run_dir)
    click.echo(rep.table(run))
    out = out or run.path("af/report.png")
    rep.plot(run, out)
    click.echo(f"report: {out}")


@main.command()
@click.option("--model", "model_name", required=True, metavar="NAME_OR_PATH",
              help="Causal LM (e.g. microsoft/phi-2, or a local folder).")
@click.option("--adapter", type=click.Path(file_okay=False, exists=True), help="LoRA adapter folder.")
@click.option("--data", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HellaSwag-format JSONL (advfilter export, or HellaSwag itself).")
@click.option("--split", help="Only records whose split field equals this.")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Items per forward pass.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write results JSON here.")
def evaluate(model_name: str, adapter: str | None, data: Path, split: str | None, batch_size: int,
             output: Path | None) -> None:
    """Zero-shot acc / acc_norm, scored as lm-evaluation-harness scores HellaSwag."""
    from tqdm import tqdm

    from advfilter import evaluate as ev
    from advfilter.store import write_json

    docs = ev.read_docs(data, split)
    model, tok = ev.load_model(model_name, adapter)
    scorer = ev.Scorer(model, tok)
    lls = []
    for batch in tqdm(list(ev.batches(docs, batch_size)), desc="scoring", unit="batch", disable=None):
        lls += scorer.loglikelihoods(batch)
    results = {"model": model_name, "adapter": adapter, "data": str(data), "split": split,
               **ev.summarize(docs, lls)}
    click.echo(f"n={results['n']}  acc={results['acc']:.4f} ± {results['acc_stderr']:.4f}  "
               f"acc_norm={results['acc_norm']:.4f} ± {results['acc_norm_stderr']:.4f}")
    for group, rows in results["by"].items():
        for key, r in rows.items():
            click.echo(f"  {group} {key or '-'}: n={r['n']} acc={r['acc']:.3f} acc_norm={r['acc_norm']:.3f}")
    if output:
        write_json(output, results)
        click.echo(f"results: {output}")


@main.command(name="finetune-phi2")
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="Exported items: HellaSwag JSONL or an `export --format hf` folder.")
@click.option("--eval-data", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Validation JSONL (default: the data's validation split).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: adapter/, metrics.jsonl, metrics.json, checkpoint/.")
@click.option("--model", default="microsoft/phi-2", show_default=True, help="Base model name or path.")
@click.option("--objective", type=click.Choice(["lm", "mc"]), default="lm", show_default=True,
              help="lm: loss on the gold ending's tokens; mc: cross-entropy over the choices.")
@click.option("--lora-r", type=int, default=16, show_default=True)
@click.option("--lora-alpha", type=int, default=32, show_default=True, help="Usually 2 * r.")
@click.option("--lora-dropout", type=float, default=0.05, show_default=True)
@click.option("--epochs", type=int, default=1, show_default=True)
@click.option("--max-steps", type=int, default=0, help="Optimizer steps (overrides --epochs).")
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--scheduler", type=click.Choice(["linear", "cosine", "cosine_with_restarts",
                                                "reduce_lr_on_plateau"]), default="linear", show_default=True)
@click.option("--warmup-steps", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=4, show_default=True, help="Items per micro-batch.")
@click.option("--grad-accum", type=int, default=4, show_default=True, help="Micro-batches per step.")
@click.option("--save-every", type=int, default=50, show_default=True, help="Checkpoint every N steps.")
@click.option("--4bit", "load_4bit", is_flag=True, help="Load the base model in 4 bits (GPU + bitsandbytes).")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.")
@click.option("--wandb", "use_wandb", is_flag=True, help="Also log to Weights & Biases (offline unless configured).")
@click.option("--seed", type=int, default=0, show_default=True)
def finetune_phi2(data: Path, eval_data: Path | None, out: Path, model: str, objective: str,
                  lora_r: int, lora_alpha: int, lora_dropout: float, epochs: int, max_steps: int,
                  lr: float, scheduler: str, warmup_steps: int, batch_size: int, grad_accum: int,
                  save_every: int, load_4bit: bool, resume: bool, use_wandb: bool, seed: int) -> None:
    """LoRA fine-tuning (peft) of Phi-2's attention and MLP projections on exported items."""
    import os
    from dataclasses import asdict

    from advfilter.finetune import FinetuneConfig, finetune, load_training_docs

    cfg = FinetuneConfig(model=model, objective=objective, lora_r=lora_r, lora_alpha=lora_alpha,
                         lora_dropout=lora_dropout, epochs=epochs, max_steps=max_steps, lr=lr,
                         scheduler=scheduler, warmup_steps=warmup_steps, batch_size=batch_size,
                         grad_accum=grad_accum, save_every=save_every, load_4bit=load_4bit, seed=seed)
    train, valid = load_training_docs(data, eval_data)
    log_fns = [lambda row: click.echo(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                for k, v in row.items()))]
    if use_wandb:
        try:
            import wandb
        except ImportError:
            raise click.UsageError("--wandb needs the wandb package (pip install wandb)") from None
        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        wandb.init(project="advfilter", dir=str(out), mode=mode, config=asdict(cfg))
        log_fns.append(wandb.log)
    summary = finetune(cfg, train, valid, out, resume=resume,
                       on_log=lambda row: [fn(row) for fn in log_fns])
    click.echo(f"finetune: {summary['steps']} steps; loss {summary['first_loss']:.4f} -> "
               f"{summary['last_loss']:.4f}; eval acc={summary['eval_acc']} "
               f"acc_norm={summary['eval_acc_norm']}; adapter in {out / 'adapter'}")


@main.command()
@click.argument("run_a", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("run_b", type=click.Path(file_okay=False, exists=True, path_type=Path))
def compare(run_a: Path, run_b: Path) -> None:
    """Side-by-side table of two fine-tuning runs (their OUT folders)."""
    import json

    rows = []
    for path in (run_a, run_b):
        if not (path / "metrics.json").exists():
            raise RunError(f"{path}: no metrics.json; is it a finetune-phi2 output folder?")
        rows.append(json.loads((path / "metrics.json").read_text()))
    keys = ["steps", "first_loss", "last_loss", "min_loss", "eval_acc", "eval_acc_norm"]
    keys += [f"config.{k}" for k in rows[0]["config"]]

    def value(row: dict, key: str) -> str:
        v = row["config"].get(key[7:]) if key.startswith("config.") else row.get(key)
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    click.echo(f"{'':24} {str(run_a):>28} {str(run_b):>28}")
    for key in keys:
        a, b = value(rows[0], key), value(rows[1], key)
        click.echo(f"{key:24} {a:>28} {b:>28}{'' if a == b else '  *'}")


