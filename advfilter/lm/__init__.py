"""Causal LMs on the built items: zero-shot evaluation, LoRA fine-tuning, its report, sweeps."""
