"""`advfilter finetune-phi2` and `compare` on a tiny PhiConfig model with a local tokenizer."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from advfilter.cli import main
from advfilter.core.lm import to_doc
from advfilter.core.config import load_config
from advfilter.core.settings import LoraSettings
from advfilter.lm.config import FinetuneConfig
from advfilter.core.models import lora_targets
from advfilter.lm.finetune import finetune

ITEMS = [{"activity_label": "Cooking", "ctx_a": f"A cook number {i} stands at a stove.", "ctx_b": "the cook",
          "endings": ["stirs the soup in the pot.", "flies over the moon.", "sings to a rock.",
                      "paints the sky green."], "label": 0, "split": "train"} for i in range(8)]


def config(tiny_phi, **changes) -> FinetuneConfig:
    base = dict(model=str(tiny_phi), lora=LoraSettings(r=4, alpha=8, dropout=0.0), max_steps=6, lr=1e-2,
                batch_size=4, grad_accum=1, save_every=2, eval_batch_size=8)
    return FinetuneConfig(**{**base, **changes})


@pytest.mark.parametrize("objective", ["lm", "mc"])
def test_lora_lowers_the_training_loss_in_a_few_steps(tiny_phi, tmp_path, objective):
    docs = [to_doc(r) for r in ITEMS]
    summary = finetune(config(tiny_phi, objective=objective), docs, docs[:4], tmp_path / "out")
    assert summary["last_loss"] < summary["first_loss"]
    assert summary["eval_acc"] is not None


def test_only_adapter_weights_change_and_the_adapter_is_saved_alone(tiny_phi, tmp_path):
    from transformers import AutoModelForCausalLM

    docs = [to_doc(r) for r in ITEMS]
    finetune(config(tiny_phi), docs, [], tmp_path / "out")
    saved = load_file(tmp_path / "out" / "adapter" / "adapter_model.safetensors")
    assert saved and all("lora_" in name for name in saved)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_phi))
    from peft import PeftModel

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_phi)),
                                      tmp_path / "out" / "adapter")
    tuned_base = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
                  for k, v in tuned.state_dict().items() if "lora_" not in k}
    for name, weight in base.state_dict().items():
        assert torch.equal(weight, tuned_base[name]), name
    assert any(float(v.abs().sum()) > 0 for k, v in saved.items() if "lora_B" in k)


class Killed(Exception):
    pass


def test_resume_continues_from_the_saved_step_to_the_same_adapter(tiny_phi, tmp_path):
    docs = [to_doc(r) for r in ITEMS * 2]
    finetune(config(tiny_phi, max_steps=4), docs, [], tmp_path / "straight")

    def die_at_step_3(row):
        if row.get("step") == 3:
            raise Killed  # after the step-2 checkpoint, before the step-4 one

    with pytest.raises(Killed):
        finetune(config(tiny_phi, max_steps=4), docs, [], tmp_path / "resumed", on_log=die_at_step_3)
    summary = finetune(config(tiny_phi, max_steps=4), docs, [], tmp_path / "resumed", resume=True)
    steps = [json.loads(x)["step"] for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert summary["steps"] == 4 and steps == [1, 2, 3, 4]
    a = load_file(tmp_path / "straight" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "adapter" / "adapter_model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_cli_trains_evaluates_with_the_adapter_and_compares_two_runs(tiny_phi, tmp_path, runner):
    data = tmp_path / "items.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ITEMS) + "\n" +
                    "\n".join(json.dumps({**r, "split": "validation"}) for r in ITEMS[:3]))
    common = ["finetune-phi2", "--data", str(data), "--model", str(tiny_phi), "--lora-r", "4",
              "--max-steps", "2", "--batch-size", "4", "--grad-accum", "1"]
    for name, scheduler in (("a", "cosine"), ("b", "reduce_lr_on_plateau")):
        result = runner.invoke(main, [*common, "--out", str(tmp_path / name), "--scheduler", scheduler])
        assert result.exit_code == 0, result.output
    saved = load_config(tmp_path / "a" / "config.yaml", schema=FinetuneConfig)  # ready for --config
    assert (saved.lora.r, saved.scheduler, saved.max_steps) == (4, "cosine", 2)
    for adapter in (tmp_path / "a", tmp_path / "a" / "adapter"):  # the --out folder, or its adapter/
        evaluated = runner.invoke(main, ["evaluate", "--model", str(tiny_phi), "--adapter",
                                         str(adapter), "--data", str(data)])
        assert evaluated.exit_code == 0 and "acc_norm=" in evaluated.stdout
    wrong = runner.invoke(main, ["evaluate", "--model", str(tiny_phi), "--adapter", str(tmp_path),
                                 "--data", str(data)])
    assert wrong.exit_code == 2 and "no LoRA adapter here" in wrong.stderr
    table = runner.invoke(main, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert table.exit_code == 0
    assert any(line.startswith("config.scheduler") and line.endswith("*") for line in table.stdout.splitlines())


def test_4bit_without_a_gpu_is_a_one_line_error(tiny_phi, tmp_path, runner):
    data = tmp_path / "items.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ITEMS))
    result = runner.invoke(main, ["finetune-phi2", "--data", str(data), "--model", str(tiny_phi),
                                  "--out", str(tmp_path / "o"), "--4bit"])
    assert result.exit_code == 2 and "4-bit loading needs" in result.stderr


def test_malformed_training_data_is_one_line_with_exit_2(tiny_phi, tmp_path, runner):
    data = tmp_path / "items.jsonl"
    data.write_text(json.dumps(ITEMS[0]) + "\n{not json\n")
    result = runner.invoke(main, ["finetune-phi2", "--data", str(data), "--model", str(tiny_phi),
                                  "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and f"{data}: line 2: malformed JSON" in result.stderr


@pytest.mark.parametrize("model_type, expected", [
    ("phi", ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"]),
    ("gpt2", ["c_attn", "c_proj", "c_fc"]),
    ("some-new-architecture", "all-linear"),
])
def test_lora_targets_follow_the_architecture_unless_configured(model_type, expected):
    from types import SimpleNamespace

    model = SimpleNamespace(config=SimpleNamespace(model_type=model_type))
    assert lora_targets(model, LoraSettings()) == expected
    assert lora_targets(model, LoraSettings(target_modules=["q_proj"])) == ["q_proj"]


def test_eval_loss_and_accuracy_are_recorded_from_the_base_model_on_every_eval_every_steps(tiny_phi, tmp_path):
    docs = [to_doc(r) for r in ITEMS]
    finetune(config(tiny_phi, max_steps=4, eval_every=2, eval_items=3), docs, docs, tmp_path / "out")
    rows = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval_loss" in r]
    assert [r["step"] for r in evals] == [0, 2, 4]  # the base model first: the baseline
    assert all(r["eval_loss"] > 0 and 0 <= r["eval_acc_norm"] <= 1 for r in evals)
    saved = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert saved["items"] == 3 and saved["baseline"]["n"] == 3
    assert saved["baseline"]["acc_norm"] == evals[0]["eval_acc_norm"]
    assert saved["tuned"]["acc_norm"] == evals[-1]["eval_acc_norm"]


def test_report_finetune_draws_the_curves_and_writes_a_one_page_html(tiny_phi, tmp_path, runner):
    docs = [to_doc(r) for r in ITEMS]
    out = tmp_path / "out"
    finetune(config(tiny_phi, max_steps=3, eval_every=1), docs, docs[:4], out)
    result = runner.invoke(main, ["report", "--finetune", str(out)])
    assert result.exit_code == 0, result.output
    for png in ("loss.png", "confusion.png", "activity.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    for figure in ('src="loss.png"', 'src="confusion.png"', 'src="activity.png"', 'id="overall"',
                   'id="activities"', "<th>Cooking</th>"):
        assert figure in page


def test_compare_with_a_baseline_writes_a_markdown_table_marking_differences(tiny_phi, tmp_path, runner):
    docs = [to_doc(r) for r in ITEMS]
    finetune(config(tiny_phi, max_steps=2), docs, docs[:4], tmp_path / "base")
    finetune(config(tiny_phi, max_steps=2, lr=5e-3), docs, docs[:4], tmp_path / "lower-lr")
    result = runner.invoke(main, ["compare", "--baseline", str(tmp_path / "base"), str(tmp_path / "lower-lr"),
                                  "--out", str(tmp_path / "table.md")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "| | `base` (baseline) | `lower-lr` |" and lines[1] == "|---|---|---|"
    lr = next(line for line in lines if line.startswith("| config.lr |"))
    assert lr == "| config.lr | 0.0100 | 0.0050 (-0.005) |"
    assert any(line.startswith("| eval_acc_norm |") for line in lines)
    assert (tmp_path / "table.md").read_text().strip() == result.stdout.strip()


def screenshot(page: Path, png: Path) -> "np.ndarray":
    """The page as headless Chromium (Debian's package) draws it: an RGB array."""
    import matplotlib.image

    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={png.parent / 'chromium-profile'}", "--hide-scrollbars",
                    "--window-size=1000,2600", f"--screenshot={png}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    return (matplotlib.image.imread(png)[..., :3] * 255).astype(int)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test-all installs it)")
def test_the_finetune_report_shows_its_figures_in_a_real_browser(tiny_phi, tmp_path, runner):
    docs = [to_doc(r) for r in ITEMS]
    out = tmp_path / "out"
    finetune(config(tiny_phi, max_steps=3, eval_every=1), docs, docs[:4], out)
    assert runner.invoke(main, ["report", "--finetune", str(out)]).exit_code == 0
    shot = screenshot(out / "report.html", tmp_path / "report.png")
    figures_blue = (np.abs(shot - [31, 119, 180]).sum(axis=-1) < 60).sum()  # matplotlib's first colour
    ink = (shot.sum(axis=-1) < 600).mean()
    for png in ("loss.png", "confusion.png", "activity.png"):
        (out / png).unlink()
    bare = screenshot(out / "report.html", tmp_path / "bare.png")
    bare_blue = (np.abs(bare - [31, 119, 180]).sum(axis=-1) < 60).sum()
    assert ink > 0.005, "the page is nearly blank"
    assert figures_blue > 500 and bare_blue < figures_blue / 10, (figures_blue, bare_blue)


# --- never scoring what it trained on ------------------------------------------------------

def test_data_with_no_train_split_is_split_by_video_and_says_so(tiny_phi, tmp_path, caplog):
    from advfilter.lm.finetune import finetune_recipe

    val = [{**ITEMS[0], "ctx_a": f"A cook number {i} stands at a stove.", "split": "val", "ind": i,
            "source_id": f"activitynet~v_{i // 2}"} for i in range(24)]
    data = tmp_path / "hellaswag_val.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in val) + "\n")
    finetune_recipe(config(tiny_phi, max_steps=2, valid_fraction=0.3), data, tmp_path / "out")
    splits = json.loads((tmp_path / "out" / "splits.json").read_text())
    trained, evaluated = set(splits["trained_on"]), set(splits["evaluated_on"])
    assert trained and evaluated and not trained & evaluated
    video = {str(r["ind"]): r["source_id"] for r in val}
    assert not {video[i] for i in trained} & {video[i] for i in evaluated}  # whole videos apart
    assert "no train split; held out" in caplog.text


def test_validation_items_equal_to_training_items_are_left_out(tiny_phi, tmp_path, caplog):
    from advfilter.lm.data import training_data

    data = tmp_path / "items.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ITEMS) + "\n")
    chosen = training_data(data, data, valid_fraction=0.1, seed=0)  # --eval-data: the same file
    assert chosen.valid == [] and "left out 8 validation items" in chosen.note


def test_the_last_step_is_always_evaluated(tiny_phi, tmp_path):
    docs = [to_doc(r) for r in ITEMS]
    summary = finetune(config(tiny_phi, max_steps=6, eval_every=4), docs, docs[:4], tmp_path / "out")
    evals = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
             if "eval_loss" in x]
    assert [e["step"] for e in evals] == [0, 4, 6]
    assert summary["eval_acc_norm"] == evals[-1]["eval_acc_norm"]
