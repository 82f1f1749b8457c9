"""``evaluate``, ``finetune-phi2`` and ``compare``: using the data set on a language model."""
from __future__ import annotations

from pathlib import Path

import click

from advfilter.cli import main
from advfilter.errors import RunError


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
