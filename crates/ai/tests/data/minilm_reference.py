#!/usr/bin/env python3
"""Reference sentence embeddings for all-MiniLM-L6-v2, computed without candle.

sentence-transformers/torch could not be installed on the build machines (no torch wheels within
reach at a sane size), so this is an independent NumPy implementation of the same model: BERT
encoder (post-LayerNorm, exact erf GELU), mean pooling over real tokens, L2 normalisation. It
reads the same files `hibana models install all-minilm-l6-v2` installs.

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install numpy safetensors tokenizers
    /tmp/refvenv/bin/python crates/ai/tests/data/minilm_reference.py \
        "$HIBANA_MODELS/all-minilm-l6-v2" > crates/ai/tests/data/minilm_reference.json
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "The validator re-executes the provider's answer.",
    "A cat sits on the warm windowsill.",
    "Stake is slashed when a receipt does not match the model output.",
    "Hibana pays for AI inference with on-chain payment channels.",
    "",
]


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def embed(folder, text):
    cfg = json.load(open(f"{folder}/config.json"))
    max_len = json.load(open(f"{folder}/sentence_bert_config.json"))["max_seq_length"]
    tok = Tokenizer.from_file(f"{folder}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(max_len)
    w = {k: v.astype(np.float64) for k, v in load_file(f"{folder}/model.safetensors").items()}
    pre = "" if "embeddings.word_embeddings.weight" in w else "bert."
    g = lambda name: w[pre + name]
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]

    ids = tok.encode(text).ids
    n = len(ids)
    x = g("embeddings.word_embeddings.weight")[ids] + g("embeddings.position_embeddings.weight")[:n] + g("embeddings.token_type_embeddings.weight")[[0] * n]
    x = layer_norm(x, g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), eps)
    d = x.shape[1]
    hd = d // heads
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda t, name: t @ g(p + name + ".weight").T + g(p + name + ".bias")
        q = lin(x, "attention.self.query").reshape(n, heads, hd).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(n, heads, hd).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(n, heads, hd).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(n, d)
        x = layer_norm(lin(a, "attention.output.dense") + x, g(p + "attention.output.LayerNorm.weight"), g(p + "attention.output.LayerNorm.bias"), eps)
        h = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(lin(h, "output.dense") + x, g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias"), eps)
    mean = x.mean(0)
    return (mean / max(np.linalg.norm(mean), 1e-12)).tolist(), n


def main():
    folder = sys.argv[1]
    out = []
    for s in SENTENCES:
        vec, n = embed(folder, s)
        out.append({"text": s, "tokens": n, "embedding": [round(v, 7) for v in vec]})
    json.dump({"model": "all-minilm-l6-v2", "method": "numpy float64 reference (minilm_reference.py)", "sentences": out}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
