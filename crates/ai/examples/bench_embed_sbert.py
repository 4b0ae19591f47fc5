"""Reference side of bench_embed: sentence-transformers on the same model folder and sentences.

Usage: python bench_embed_sbert.py MODEL_DIR SENTENCES.json THREADS
Prints JSON: sentences/s one per request and in batches of 32 (median of three passes), the
embeddings of every sentence, and the library versions.
"""
import json
import statistics
import sys
import time

import torch
import sentence_transformers
from sentence_transformers import SentenceTransformer


def rate(model, texts, batch):
    times = []
    vectors = None
    for _ in range(3):
        start = time.perf_counter()
        out = []
        for k in range(0, len(texts), batch):
            out.extend(model.encode(texts[k:k + batch], batch_size=batch,
                                    normalize_embeddings=True, convert_to_numpy=True))
        times.append(time.perf_counter() - start)
        vectors = out
    return len(texts) / statistics.median(times), vectors


def main():
    model_dir, sentences_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    with open(sentences_path) as f:
        texts = json.load(f)
    model = SentenceTransformer(model_dir, device="cpu")
    model.encode(texts[:8])
    with torch.inference_mode():
        single, _ = rate(model, texts[:64], 1)
        batched, vectors = rate(model, texts, 32)
    json.dump({
        "single": single,
        "batched": batched,
        "vectors": [[float(x) for x in v] for v in vectors],
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
    }, sys.stdout)


if __name__ == "__main__":
    main()
