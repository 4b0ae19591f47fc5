"""Reference side of bench_embed: sentence-transformers on the same model folder and sentences.

Usage: python bench_embed_sbert.py MODEL_DIR SENTENCES.json THREADS
Then one command a line on stdin, each answered by one JSON line on stdout, so that the caller can
alternate its own passes with these ones:
  single      seconds to embed the first 64 sentences one per call
  batched     seconds to embed all sentences 32 per call
  vectors     the embedding of every sentence, and the library versions
"""
import json
import sys
import time

import torch
import sentence_transformers
from sentence_transformers import SentenceTransformer


def embed(model, texts, batch):
    out = []
    for k in range(0, len(texts), batch):
        out.extend(model.encode(texts[k:k + batch], batch_size=batch,
                                normalize_embeddings=True, convert_to_numpy=True))
    return out


def main():
    model_dir, sentences_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    with open(sentences_path) as f:
        texts = json.load(f)
    model = SentenceTransformer(model_dir, device="cpu")
    model.encode(texts[:8])
    print(json.dumps({"ready": True}), flush=True)
    with torch.inference_mode():
        for line in sys.stdin:
            command = line.strip()
            if command in ("single", "batched"):
                subset, batch = (texts[:64], 1) if command == "single" else (texts, 32)
                start = time.perf_counter()
                embed(model, subset, batch)
                answer = {"seconds": time.perf_counter() - start}
            elif command == "vectors":
                answer = {
                    "vectors": [[float(x) for x in v] for v in embed(model, texts, 32)],
                    "sentence_transformers": sentence_transformers.__version__,
                    "torch": torch.__version__,
                }
            else:
                break
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
