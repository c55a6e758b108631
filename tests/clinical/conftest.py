"""Fixtures shared by the clinical tests: a tiny random decoder-only language model folder."""

from __future__ import annotations

import pytest
import torch


def _byte_level_alphabet() -> list[str]:
    """The 256 printable characters byte-level BPE uses for bytes (GPT-2 convention)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    """A random 2-layer Qwen2 (hidden 32) with a byte-level tokenizer WITHOUT a pad token."""
    from transformers import Qwen2Config, Qwen2Model
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    folder = tmp_path_factory.mktemp("tiny_qwen2")
    vocab = {ch: i for i, ch in enumerate(_byte_level_alphabet())}
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], pad_token=None)
    assert tokenizer.pad_token is None
    tokenizer.save_pretrained(folder)
    config = Qwen2Config(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
    )
    torch.manual_seed(0)
    Qwen2Model(config).save_pretrained(folder)
    return folder
