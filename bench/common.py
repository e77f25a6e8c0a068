"""What every benchmark shares: a state dir, one timed pipeline run read back from MLMD, and the
per-component table. Benchmarks import this after putting the repo root on sys.path."""
from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

# As the CLI does: google-api-core's notices about Python 3.10 on import are not benchmark output.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\..*")

from components import data_version, metadata  # noqa: E402
from pipelines import lineage, local_runner, nodes  # noqa: E402
from pipelines.outcome import RunOutcome  # noqa: E402


@dataclass
class Bench:
    """Where a benchmark runs: its local layout, the data root and the DVC data version."""

    layout: local_runner.LocalLayout
    data_root: str
    version: dict


@dataclass
class TimedRun:
    seconds: float
    result: RunOutcome
    record: lineage.RunRecord

    @property
    def metrics(self) -> dict:
        return self.result.metrics

    def output_uri(self, node: str, key: str) -> str:
        artifact = self.record.nodes[node].output(key)
        return artifact.uri if artifact else ""


def add_training_options(parser, seeds: int = 2) -> None:
    """--hparams-json (as `mlops run` has it) and --seeds / --first-seed: one pipeline run per
    training seed, so a benchmark reports the spread it knows."""
    parser.add_argument("--hparams-json", help='hyperparameters over the profile\'s, e.g. \'{"dropout": 0.2}\'')
    parser.add_argument("--seeds", type=int, default=seeds,
                        help=f"pipeline runs, with training seeds first-seed, first-seed+1, ... (default {seeds})")
    parser.add_argument("--first-seed", type=int, default=42)


def with_training_options(task, args):
    """The task with --hparams-json merged over custom_config["hparams"]."""
    import json

    if not args.hparams_json:
        return task
    config = dict(task.custom_config)
    config["hparams"] = {**config.get("hparams", {}), **json.loads(args.hparams_json)}
    return task.with_overrides(custom_config=config)


def seeds_of(args) -> range:
    return range(args.first_seed, args.first_seed + max(1, args.seeds))


def with_seed(task, seed: int):
    return task.with_overrides(custom_config={**task.custom_config, "seed": seed})


@contextlib.contextmanager
def bench_home(home: str | None, data_root: str, prefix: str):
    """Yield a Bench in `home`, or in a fresh temp dir that is removed afterwards."""
    path = home or tempfile.mkdtemp(prefix=prefix)
    root = str(Path(data_root).resolve())
    try:
        yield Bench(local_runner.LocalLayout.resolve(path), root, data_version.version_of(Path(root)))
    finally:
        if not home:
            shutil.rmtree(path, ignore_errors=True)


def timed_run(task, bench: Bench, label: str = "") -> TimedRun:
    """Run the task's pipeline once; a failed or interrupted run stops the benchmark."""
    start = time.time()
    outcome = local_runner.run_pipeline(
        task, layout=bench.layout, data_root=bench.data_root, data_version=bench.version,
        log_file=bench.layout.logs_dir(task.name) / f"bench-{label or int(start)}.log", report=False,
    )
    seconds = time.time() - start
    if outcome.error or outcome.interrupted_by:
        raise SystemExit(f"{task.name} run {outcome.run_id}: {outcome.error or outcome.interrupted_by} "
                         f"(log {outcome.log_file})")
    record = lineage.load_run(metadata.open_store(str(bench.layout.metadata_path)),
                              nodes.pipeline_name(task.name), outcome.run_id)
    return TimedRun(seconds, outcome, record)


def print_components(result: RunOutcome, title: str = "component") -> None:
    print(f"{title:<34}seconds  state")
    for node, state, seconds in result.components:
        print(f"  {node:<31} {seconds:7.1f}  {state}")


def metric(metrics: dict, name: str) -> float:
    return metrics.get(name, float("nan"))


def mean_spread(values) -> tuple:
    """(mean, sample standard deviation) of repeated measurements; the spread is 0 for one value."""
    values = [float(v) for v in values]
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def format_spread(values, digits: int = 4) -> str:
    """'mean ± sd (n=N)' of repeated measurements."""
    mean, spread = mean_spread(values)
    return f"{mean:.{digits}f} ± {spread:.{digits}f} (n={len(list(values))})"


def load_average() -> float:
    """The 1-minute load average (what else the machine was doing while a benchmark ran)."""
    return os.getloadavg()[0]
