"""Tiny synthetic heart-shaped data for the heart tests (never the real dataset)."""
from __future__ import annotations

import csv
import random
from pathlib import Path

THAL = ["normal", "reversible", "fixed"]


def synthetic_heart_rows(n: int, seed: int = 0):
    """Rows with the real columns and value ranges; disease follows a clear rule on chest pain type,
    exercise angina, thal and ST depression, so a tiny MLP learns it in a few steps."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        row = {
            "age": rng.randint(29, 77),
            "sex": rng.randint(0, 1),
            "cp": rng.choice([0, 1, 2, 3, 4, 4]),
            "trestbps": rng.randint(94, 200),
            "chol": rng.randint(126, 564),
            "fbs": int(rng.random() < 0.15),
            "restecg": rng.choice([0, 1, 2]),
            "thalach": rng.randint(71, 202),
            "exang": rng.randint(0, 1),
            "oldpeak": round(rng.uniform(0, 6), 1),
            "slope": rng.randint(1, 3),
            "ca": rng.randint(0, 3),
            "thal": rng.choice(THAL),
        }
        risk = (row["cp"] == 4) + row["exang"] + (row["thal"] == "reversible") + (row["oldpeak"] > 3)
        row["target"] = int(risk >= 2)
        rows.append(row)
    return rows


def write_heart_csv(path: Path, rows) -> Path:
    from models.heart import features as F

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(F.CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "oldpeak": f"{row['oldpeak']:.1f}"})  # always a float column
    return path
