"""Tiny synthetic AG-News-shaped articles (never the real data): each topic has its own words, so a
small model learns them in a few steps; the layout is what `mlops data import news` writes."""
from __future__ import annotations

import csv
import random
from pathlib import Path

from models.news import features as F

TOPIC_WORDS = {
    "World": ["minister", "election", "embassy", "troops", "parliament", "treaty"],
    "Sports": ["match", "goal", "coach", "league", "season", "champion"],
    "Business": ["shares", "profit", "market", "bank", "investors", "earnings"],
    "Sci/Tech": ["software", "internet", "space", "computer", "researchers", "chip"],
}
COMMON = ["the", "a", "on", "said", "new", "after", "reuters", "ap", "monday", "year", "of", "in", "to"]


def synthetic_articles(n: int, seed: int, titles: bool = True):
    """n rows {topic, title, description}, classes in turn; titles empty unless `titles`."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topic = F.CLASS_NAMES[i % len(F.CLASS_NAMES)]
        words = rng.choices(COMMON, k=rng.randint(5, 45)) + rng.choices(TOPIC_WORDS[topic], k=3)
        rng.shuffle(words)
        description = " ".join(words).capitalize() + rng.choice([".", " \\ AP", " #36;5 million."])
        title = " ".join(rng.choices(TOPIC_WORDS[topic] + COMMON, k=4)).title() if titles else ""
        rows.append({F.TOPIC_KEY: topic, F.TITLE_KEY: title, F.DESCRIPTION_KEY: description})
    return rows


def write_news_csv(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(F.CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_news_data(data_root: Path, train: int = 240, validation: int = 40, test: int = 120, seed: int = 5) -> Path:
    """data_root/news/{train,validation,test}/news.csv as the importer lays them out (the train and
    validation articles without titles, as AG News' train sample)."""
    out = Path(data_root) / "news"
    write_news_csv(out / "train" / "news.csv", synthetic_articles(train, seed, titles=False))
    write_news_csv(out / "validation" / "news.csv", synthetic_articles(validation, seed + 1, titles=False))
    write_news_csv(out / "test" / "news.csv", synthetic_articles(test, seed + 2))
    return out
