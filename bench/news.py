"""News benchmark (not a test): AG News through the pipeline, per profile and training seed, each run
from a fresh home so its wall time is end to end (no cache from the run before).

Prints, per run, the Evaluator's test-split accuracy and macro F1 (AG News' 7,600 test articles,
which only the Evaluator reads), blessing, wall time and the 1-minute load average at its end; then
per profile the mean ± sample standard deviation over the seeds: the table README's news section
quotes (from scratch vs MiniLM).
Usage: .venv/bin/python bench/news.py --data-root DIR [--profiles default minilm] [--seeds 2]
       [--first-seed 42] [--hparams-json JSON]
DIR holds news/{train,validation,test}/ (`mlops data import news --source ../shared/datasets/ag_news`).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.common import (add_training_options, bench_home, format_spread, load_average, metric,  # noqa: E402
                          print_components, seeds_of, timed_run, with_seed, with_training_options)
from pipelines.tasks import load_task  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--profiles", nargs="+", default=["default", "minilm"])
    add_training_options(parser)
    args = parser.parse_args()

    table = {}
    for profile in args.profiles:
        task = with_training_options(load_task("news", profile), args)
        for seed in seeds_of(args):
            with bench_home(None, args.data_root, f"bench-news-{profile}-") as bench:
                run = timed_run(with_seed(task, seed), bench, f"{profile}-seed-{seed}")
            m = run.metrics
            load = load_average()
            table.setdefault(profile, []).append((metric(m, "sparse_categorical_accuracy"),
                                                  metric(m, "macro_f1_score"), run.seconds))
            print(f"\n[{profile}, seed {seed}] test accuracy={table[profile][-1][0]:.4f} "
                  f"macro F1={table[profile][-1][1]:.4f} examples={int(m.get('example_count', 0))} "
                  f"blessed={run.result.blessed} wall={run.seconds:.0f} s load={load:.1f}", flush=True)
            print_components(run.result)
    print(f"\nnews benchmark, test split, seeds {list(seeds_of(args))}")
    print(f"{'profile':<10} {'accuracy':>24} {'macro F1':>24} {'wall s':>22}")
    for profile, rows in table.items():
        print(f"{profile:<10} {format_spread([r[0] for r in rows]):>24} {format_spread([r[1] for r in rows]):>24} "
              f"{format_spread([r[2] for r in rows], 0):>22}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
