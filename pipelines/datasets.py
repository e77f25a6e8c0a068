"""Import raw datasets into data/ (then tracked by DVC) and report the DVC data version."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable, Dict

from models.census import features as census_features


def import_census(source_dir: Path, data_root: Path) -> Path:
    """UCI adult.data -> data/census/adult.csv with a header row.

    Values are kept as they are except for the leading space after each comma, which is
    stripped. '?' stays the missing-value marker (it becomes its own category).
    """
    source = Path(source_dir) / "adult.data"
    if not source.exists():
        raise FileNotFoundError(f"{source} not found (expected the UCI adult.data file)")
    out_dir = Path(data_root) / "census"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "adult.csv"
    columns = census_features.CSV_COLUMNS
    rows = 0
    with open(source, encoding="utf-8") as src, open(target, "w", encoding="utf-8", newline="\n") as dst:
        dst.write(",".join(columns) + "\n")
        for line_no, line in enumerate(src, 1):
            if not line.strip():
                continue
            values = [v.strip() for v in line.rstrip("\n").split(",")]
            if len(values) != len(columns):
                raise ValueError(f"{source}:{line_no}: expected {len(columns)} values, got {len(values)}")
            dst.write(",".join(values) + "\n")
            rows += 1
    return target


def import_pets(source_dir: Path, data_root: Path) -> Path:
    """Kaggle cats-vs-dogs train/{cat,dog}.N.jpg -> data/pets/{cat,dog}/ (bytes unchanged)."""
    import shutil

    source = Path(source_dir) / "train"
    if not source.is_dir():
        raise FileNotFoundError(f"{source} not found (expected the cats_vs_dogs train/ folder)")
    out_dir = Path(data_root) / "pets"
    count = 0
    for image in sorted(source.glob("*.jpg")):
        label = image.name.split(".", 1)[0]
        if label not in ("cat", "dog"):
            continue
        (out_dir / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, out_dir / label / image.name)
        count += 1
    if count == 0:
        raise ValueError(f"no cat.*.jpg / dog.*.jpg files in {source}")
    return out_dir


def import_reviews(source_dir: Path, data_root: Path) -> Path:
    """IMDB imdb_train.csv.gz -> data/reviews/imdb_train.csv (decompressed, bytes otherwise unchanged)."""
    import gzip
    import shutil

    source = Path(source_dir) / "imdb_train.csv.gz"
    if not source.exists():
        raise FileNotFoundError(f"{source} not found (expected the IMDB imdb_train.csv.gz file)")
    out_dir = Path(data_root) / "reviews"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "imdb_train.csv"
    with gzip.open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def import_heart(source_dir: Path, data_root: Path) -> Path:
    """Cleveland heart.csv (Keras example, 303 rows) -> data/heart/heart.csv, bytes unchanged.

    The header must be the 14 expected columns; each row must have 14 values.
    """
    import shutil

    from models.heart import features as heart_features

    source = Path(source_dir) / "heart.csv"
    if not source.exists():
        raise FileNotFoundError(f"{source} not found (expected the 303-row Cleveland heart.csv)")
    columns = list(heart_features.CSV_COLUMNS)
    with open(source, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        if header != columns:
            raise ValueError(f"{source}: header {header} is not {columns}")
        for line_no, line in enumerate(f, 2):
            if line.strip() and len(line.strip().split(",")) != len(columns):
                raise ValueError(f"{source}:{line_no}: expected {len(columns)} values")
    out_dir = Path(data_root) / "heart"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "heart.csv"
    shutil.copyfile(source, target)
    return target


# Rows per STS benchmark file (readme.txt); None skips the check (tests use tiny files).
STS_EXPECTED_ROWS = {"train": 5749, "dev": 1500, "test": 1379}


def import_sts(source_dir: Path, data_root: Path) -> Path:
    """STS benchmark sts-{train,dev,test}.csv -> data/sts/{train,dev,test}/sts-*.csv.

    The originals are tab-separated without a header or quoting, and some rows carry two extra
    licence/source fields. The output keeps the first seven fields (genre, filename, year, id,
    score, sentence1, sentence2) unchanged, as a comma-separated file with a header row and
    standard CSV quoting (what CsvExampleGen reads). Row counts are checked against the originals.
    """
    import csv

    from models.sts import features as sts_features

    source_dir = Path(source_dir)
    missing = [name for name in sts_features.SOURCE_FILES.values() if not (source_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not found in {source_dir} (expected the STS benchmark files)")
    out_dir = Path(data_root) / "sts"
    for folder, name in sts_features.SOURCE_FILES.items():
        rows = []
        with open(source_dir / name, encoding="utf-8", newline="") as src:
            for line_no, line in enumerate(src, 1):
                line = line.rstrip("\n").rstrip("\r")
                if not line:
                    continue
                fields = line.split("\t")
                if len(fields) not in (7, 9):
                    raise ValueError(f"{source_dir / name}:{line_no}: expected 7 or 9 tab-separated fields, got {len(fields)}")
                rows.append(fields[:7])
        if STS_EXPECTED_ROWS and len(rows) != STS_EXPECTED_ROWS[folder]:
            raise ValueError(f"{source_dir / name}: {len(rows)} rows, expected {STS_EXPECTED_ROWS[folder]}")
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
        with open(out_dir / folder / name, "w", encoding="utf-8", newline="") as dst:
            writer = csv.writer(dst, lineterminator="\n")
            writer.writerow(sts_features.CSV_COLUMNS)
            writer.writerows(rows)
    return out_dir


IMPORTERS: Dict[str, Callable[[Path, Path], Path]] = {
    "census": import_census,
    "heart": import_heart,
    "pets": import_pets,
    "reviews": import_reviews,
    "sts": import_sts,
}


def repo_root(start: Path | None = None) -> Path:
    """The directory holding data.dvc (searching upwards from start or the cwd)."""
    here = Path(start or os.getcwd()).resolve()
    for candidate in [here, *here.parents]:
        if (candidate / "data.dvc").exists():
            return candidate
    raise FileNotFoundError(f"no data.dvc found in {here} or its parents; run mlops from the project checkout")


def tracked_md5(root: Path) -> str:
    """The md5 that data.dvc records for data/ (DVC's directory hash, e.g. '1f3e….dir')."""
    import yaml

    spec = yaml.safe_load((root / "data.dvc").read_text())
    outs = spec.get("outs") or []
    if not outs or "md5" not in outs[0]:
        raise ValueError(f"{root / 'data.dvc'} records no md5 for its output")
    return outs[0]["md5"]


def data_status(root: Path) -> dict:
    """{'md5': tracked md5, 'dirty': bool, 'changes': {...}} comparing data/ with data.dvc."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        changes = repo.status(targets=[str(root / "data.dvc")])
    return {
        "target": "data.dvc",
        "md5": tracked_md5(root),
        "dirty": bool(changes),
        "changes": changes,
    }


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the dvc CLI that belongs to this interpreter's environment."""
    import shutil
    import sys

    exe = Path(sys.executable).with_name("dvc")
    cmd = [str(exe) if exe.exists() else (shutil.which("dvc") or "dvc"), *args]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True)
