"""Tiny synthetic STS-shaped data and a tiny BERT checkpoint for the sts tests (never the real data
or weights)."""
from __future__ import annotations

import csv
import random
from pathlib import Path

WORDS = ["a", "man", "woman", "dog", "cat", "is", "playing", "eating", "the", "guitar", "piano", "ball",
         "running", "on", "grass", "beach", "child", "riding", "horse", "bike", "red", "small", "big", "car"]
GENRES = ["main-captions", "main-news", "main-forum"]


def write_tiny_checkpoint(directory: Path) -> Path:
    """config.json + vocab.txt of a 2-layer, 32-wide BERT over WORDS (no weights: random init)."""
    from transformers import BertConfig

    directory.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + WORDS
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=64).to_json_file(str(directory / "config.json"))
    return directory


def synthetic_pairs(n: int, seed: int):
    """Pairs whose gold score is 5 × the share of words sentence2 keeps from sentence1."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = rng.choices(WORDS, k=rng.randint(5, 10))
        changed = rng.randint(0, len(words))
        other = list(words)
        for position in rng.sample(range(len(words)), changed):
            other[position] = rng.choice(WORDS)
        score = 5.0 * (1 - changed / len(words))
        rows.append({
            "genre": rng.choice(GENRES), "filename": "synthetic", "year": "2012test", "id": i + 1,
            "score": f"{score:.3f}", "sentence1": " ".join(words) + ".", "sentence2": " ".join(other) + ".",
        })
    return rows


def write_sts_data(data_root: Path, sizes=(300, 120, 120), seed: int = 0) -> Path:
    """data_root/sts/{train,dev,test}/sts-*.csv as the importer writes them."""
    from models.sts import features as F

    for offset, (folder, size) in enumerate(zip(("train", "dev", "test"), sizes)):
        path = data_root / "sts" / folder / F.SOURCE_FILES[folder]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(F.CSV_COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows(synthetic_pairs(size, seed + offset))
    return data_root / "sts"
