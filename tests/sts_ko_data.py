"""Tiny synthetic KLUE-STS-shaped Korean data for the sts_ko tests (never the real data)."""
from __future__ import annotations

import csv
import random
from pathlib import Path

WORDS = ["숙소", "위치", "호스트", "친절", "정책", "시민", "방", "깨끗", "교통", "편리", "가격", "저렴",
         "직원", "아침", "영화", "음식", "맛있", "조용", "넓은", "작은", "가까운", "추천", "다시", "방문"]
SOURCES = ["airbnb-rtt", "policy-sampled", "paraKQC-para"]


def synthetic_pairs(n: int, seed: int, source=None):
    """Pairs whose gold score is 5 x the share of words sentence2 keeps from sentence1."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = rng.choices(WORDS, k=rng.randint(4, 8))
        changed = rng.randint(0, len(words))
        other = list(words)
        for position in rng.sample(range(len(words)), changed):
            other[position] = rng.choice(WORDS)
        rows.append({"source": source or rng.choice(SOURCES), "guid": f"synthetic-{seed}-{i}",
                     "score": f"{5.0 * (1 - changed / len(words)):.3f}",
                     "sentence1": " ".join(words) + ".", "sentence2": " ".join(other) + "."})
    return rows


def write_sts_ko_data(data_root: Path, sizes=(256, 64, 48), seed: int = 0) -> Path:
    """data_root/sts_ko/{train,validation,test}/*.csv as the importer writes them."""
    from models.sts_ko import features as F

    for offset, (folder, size) in enumerate(zip(("train", "validation", "test"), sizes)):
        path = data_root / "sts_ko" / folder / F.FILES[folder]
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = synthetic_pairs(size, seed + offset, source=F.TRAIN_SOURCE if folder != "test" else None)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(F.CSV_COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return data_root / "sts_ko"
