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


IMPORTERS: Dict[str, Callable[[Path, Path], Path]] = {
    "census": import_census,
    "pets": import_pets,
    "reviews": import_reviews,
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
