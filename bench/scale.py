"""Scaling benchmark (not a test): census's data-parallel components as the data grows.

Makes census data at 1×, 4× and 16× the rows of data/census/adult.csv (copy 0 is the file itself;
every further copy jitters the numeric columns a little, within the schema's domains, and keeps
the categoricals and the label), then runs census's own pipeline (the factory, TFX's
LocalDagRunner) up to the Evaluator in a fresh home per size, once per Beam runner mode:

  in_memory         --direct_running_mode=in_memory --direct_num_workers=1
  multi_processing  --direct_running_mode=multi_processing --direct_num_workers=2

It prints, per mode and size, the seconds and rows/s of ExampleGen, StatisticsGen,
ExampleValidator, Transform and Evaluator (mean ± sample standard deviation over --repeats runs), and the growth
exponent log(time ratio) / log(size ratio) from the smallest to the largest size (1.0 = linear). The
Trainer in between trains a small fixed budget (no Tuner, --train-steps steps), so the Evaluator
scores the same architecture at every size; its time is not part of the table.
Usage: .venv/bin/python bench/scale.py [--sizes 1,4,16] [--modes in_memory,multi_processing]
       [--repeats 2] [--train-steps 100] [--work DIR] [--data-root data]
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.common import load_average, mean_spread  # noqa: E402
from pipelines import nodes  # noqa: E402
from pipelines.local_runner import run_until  # noqa: E402
from pipelines.tasks import load_task  # noqa: E402

MODES = {
    "in_memory": ("--direct_running_mode=in_memory", "--direct_num_workers=1"),
    "multi_processing": ("--direct_running_mode=multi_processing", "--direct_num_workers=2"),
}
COMPONENTS = (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.EXAMPLE_VALIDATOR, nodes.TRANSFORM, nodes.EVALUATOR)
# How many rows each component reads: all of them, all but the test split (Transform: train and
# validation), the test split (the Evaluator), or none (the ExampleValidator reads statistics, not rows).
ROWS_READ = {nodes.EXAMPLE_GEN: "all", nodes.STATISTICS_GEN: "all", nodes.EXAMPLE_VALIDATOR: None,
             nodes.TRANSFORM: "not_test", nodes.EVALUATOR: "test"}

# Jitter of the copies: integer steps (age, hours) or a relative factor (money, weights), then
# clipped to the curated schema's int domains (models/census/schema.pbtxt; e.g. capital_gain's
# 99999 cap). education_num stays as it is: it is the code of `education`.
STEPS = {"age": 1, "hours_per_week": 2}
FACTORS = {"fnlwgt": 0.05, "capital_gain": 0.05, "capital_loss": 0.05}
SCHEMA = Path(__file__).resolve().parent.parent / "models" / "census" / "schema.pbtxt"


def int_domains(schema_path: Path = SCHEMA) -> dict:
    """{feature: (min, max)} of the schema's int domains."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(str(schema_path))
    return {f.name: (f.int_domain.min, f.int_domain.max) for f in schema.feature if f.HasField("int_domain")}


def jittered(row: dict, rng: random.Random, domains: dict) -> dict:
    out = dict(row)
    for column, step in STEPS.items():
        out[column] = int(row[column]) + rng.randint(-step, step)
    for column, share in FACTORS.items():
        value = int(row[column])
        out[column] = round(value * (1 + rng.uniform(-share, share))) if value else 0
    for column in list(STEPS) + list(FACTORS):
        low, high = domains.get(column, (-(2**63), 2**63 - 1))
        out[column] = str(min(high, max(low, out[column])))
    return out


def write_scaled(source: Path, target_root: Path, copies: int, seed: int = 0) -> tuple:
    """data_root/census/adult.csv with `copies` copies of source (the first unchanged); returns
    (data_root, rows)."""
    with open(source, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    out_dir = target_root / "census"
    out_dir.mkdir(parents=True, exist_ok=True)
    rng, domains = random.Random(seed), int_domains()
    with open(out_dir / "adult.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        for copy in range(copies):
            writer.writerows(rows if copy == 0 else (jittered(row, rng, domains) for row in rows))
    return target_root, len(rows) * copies


def test_rows(record) -> int:
    """Rows in the test split, from the Evaluator's example count."""
    from components import evaluation

    uri = record.nodes[nodes.EVALUATOR].output("evaluation").uri
    return int(evaluation.overall_metrics(uri).get("example_count", 0))


def growth(times: dict, sizes: list) -> float:
    """log(t_largest / t_smallest) / log(largest / smallest)."""
    low, high = sizes[0], sizes[-1]
    if high == low or times.get(low, 0) <= 0 or times.get(high, 0) <= 0:
        return float("nan")
    return math.log(times[high] / times[low]) / math.log(high / low)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,4,16")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--work", help="working dir (default: a fresh temp dir, removed afterwards)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    modes = args.modes.split(",")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-scale-"))
    source = Path(args.data_root) / "census" / "adult.csv"
    base = load_task("census")
    base = dataclasses.replace(base, tuner_fn=None, train_steps=args.train_steps)

    data, rows = {}, {}
    for size in sizes:
        data[size], rows[size] = write_scaled(source, work / f"data-{size}x", size)
        print(f"data {size}x: {rows[size]} rows", flush=True)
    # results[mode][size][component] = [seconds per repeat]; test-split row counts per size
    results = {m: {s: {c: [] for c in COMPONENTS} for s in sizes} for m in modes}
    test_counts, loads = {}, []
    try:
        for repeat in range(args.repeats):
            for mode in modes:
                task = base.with_overrides(beam_pipeline_args=MODES[mode])
                for size in sizes:
                    home = work / f"home-{mode}-{size}x-{repeat}"
                    start = time.time()
                    record = run_until(task, home, data[size], nodes.EVALUATOR)
                    loads.append(load_average())
                    for component in COMPONENTS:
                        results[mode][size][component].append(record.nodes[component].seconds)
                    test_counts[size] = test_rows(record)
                    line = " ".join(f"{c} {record.nodes[c].seconds:.1f}" for c in COMPONENTS)
                    print(f"[repeat {repeat + 1}, {mode}, {size}x] {line} (run {time.time() - start:.0f} s, "
                          f"load {loads[-1]:.1f})", flush=True)
                    shutil.rmtree(home, ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\ncensus scaling: sizes {sizes} × {rows[sizes[0]]} rows, {args.repeats} repeat(s), "
          f"mean ± sd; 1-min load average during the runs "
          f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs")
    header = f"{'mode':<17}{'component':<17}" + "".join(f"{f'{s}x s':>15}{f'{s}x rows/s':>12}" for s in sizes) + "  growth"
    print(header)
    for mode in modes:
        for component in COMPONENTS:
            cells, means = "", {}
            for size in sizes:
                mean, spread = mean_spread(results[mode][size][component])
                means[size] = mean
                read = {"all": rows[size], "not_test": rows[size] - test_counts[size], "test": test_counts[size],
                        None: 0}[ROWS_READ[component]]
                rate = f"{read / mean:,.0f}" if read and mean > 0 else "-"
                cells += f"{f'{mean:.1f} ± {spread:.1f}':>15}{rate:>12}"
            print(f"{mode:<17}{component:<17}{cells}  {growth(means, sizes):.2f}")
        total = {s: sum(mean_spread(results[mode][s][c])[0] for c in COMPONENTS) for s in sizes}
        print(f"{mode:<17}{'total':<17}" + "".join(f"{total[s]:>15.1f}{rows[s] / total[s]:>12,.0f}" for s in sizes)
              + f"  {growth(total, sizes):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
