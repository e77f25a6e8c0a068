"""Model cards of registered versions, written by the Registrar at registration from the model's
lineage: the task's intended use and limitations, the data version (DVC md5) and code commit, the
training seed and hyperparameters, the baseline the candidate beat, its metrics overall and per
slice with the blessing thresholds, and the infra-validation latencies.

`card_context(...)` gathers them into plain data; `render(context)` fills the Jinja2 templates in
templates/ (model_card.md.j2, model_card.html.j2) into Markdown and one self-contained HTML page.
The Registrar stores both as artifacts `model_card.md` / `model_card.html` of the version's MLflow
run; `mlops registry card TASK@ALIAS|TASK:VERSION` prints them.

(The Model Card Toolkit does not install with the pinned stack: it needs absl-py < 1.1 and
tensorflow-model-analysis < 0.42; hence plain templates.)
"""
from __future__ import annotations

import datetime
import functools
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from models.common.contract import TEST_SPLIT

MARKDOWN_FILE = "model_card.md"
HTML_FILE = "model_card.html"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
COUNT_METRIC = "example_count"
# Training facts shown (training_info.json keys), in this order.
TRAINING_FACTS = (
    ("seed", "seed"), ("deterministic", "deterministic ops"), ("train_steps", "training steps"),
    ("batch_size", "batch size"), ("epochs_run", "epochs run"), ("framework", "framework"),
    ("framework_version", "framework version"), ("tensorflow_version", "TensorFlow"),
    ("examples_per_second", "examples/s (training)"),
)


def fmt_number(value: Any, digits: int = 4, count: bool = False) -> str:
    """4 decimals for metrics, whole numbers for counts, n/a for NaN, — for nothing."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return "n/a"
        if float(value).is_integer() and (count or abs(value) >= 100):
            return f"{int(value):,}"
        if isinstance(value, int):
            return str(value)
        return f"{value:.{digits}f}"
    return str(value)


def _metric_columns(slices, thresholds) -> List[str]:
    """Threshold metrics first, then the rest alphabetically, example_count last."""
    names = {name for s in slices for name in s.candidate}
    gated = [t.metric for t in thresholds if t.metric in names]
    first = list(dict.fromkeys(gated))
    rest = sorted(names - set(first) - {COUNT_METRIC})
    return first + rest + ([COUNT_METRIC] if COUNT_METRIC in names else [])


def _threshold_checks(slices, thresholds) -> List[Dict[str, str]]:
    """Each threshold on each slice it applies to: the candidate's value and pass / fail / —."""
    checks = []
    for threshold in thresholds:
        for s in slices:
            if not threshold.applies_to(s.key):
                continue
            value = s.candidate.get(threshold.metric)
            base = s.baseline.get(threshold.metric)
            verdict = threshold.check(value, base)
            shown = fmt_number(value)
            if threshold.kind == "change":
                shown += f" (baseline {fmt_number(base)})" if base is not None else " (no baseline: not applied)"
            checks.append({"threshold": threshold.text(), "slice": s.slice, "value": shown,
                           "result": {True: "pass", False: "fail"}.get(verdict, "—")})
    return checks


def card_context(
    *,
    task: str,
    version: Optional[int],
    pipeline: str,
    pipeline_run_id: Optional[str],
    intended_use: str,
    limitations: str,
    tags: Mapping[str, str],
    hyperparameters: Mapping[str, Any],
    training_info: Optional[Mapping[str, Any]],
    baseline: Optional[str],
    slices: Sequence[Any],
    thresholds: Sequence[Any],
    infra: Optional[Mapping[str, Any]],
) -> Dict[str, Any]:
    """Everything a card shows, as plain data. slices: components.evaluation.SliceMetrics (Overall
    first is not required); thresholds: components.evaluation.Threshold; tags: the version's
    registration tags (data md5, commit, paths); infra: {'blessed', 'latency_ms', 'reason'} or None
    when the pipeline had no InfraValidator; training_info: training_info.json, None for a model
    exported before it existed."""
    from components.registry import tags as names

    ordered = sorted(slices, key=lambda s: (s.slice != "Overall", s.slice))
    columns = _metric_columns(ordered, thresholds)
    rows = [{"slice": s.slice, "values": [fmt_number(s.candidate.get(c), count=c.endswith(COUNT_METRIC))
                                          for c in columns]} for s in ordered]
    training = None
    if training_info is not None:
        training = [(label, fmt_number(training_info.get(key), digits=1)) for key, label in TRAINING_FACTS
                    if training_info.get(key) is not None]
    latency = []
    for batch in sorted({int(k.split("_")[1]) for k in (infra or {}).get("latency_ms", {})}):
        values = infra["latency_ms"]
        latency.append({"batch": batch, "p50": fmt_number(values.get(f"batch_{batch}_p50"), 2),
                        "p99": fmt_number(values.get(f"batch_{batch}_p99"), 2)})
    return {
        "title": f"{task} v{version}" if version is not None else task,
        "task": task,
        "version": version,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pipeline": pipeline,
        "pipeline_run_id": pipeline_run_id or "unknown",
        "intended_use": intended_use.strip() or "Not stated (TaskConfig.intended_use is empty).",
        "limitations": limitations.strip() or "Not stated (TaskConfig.limitations is empty).",
        "lineage": [
            ("data (DVC md5)", tags.get(names.TAG_DATA_MD5, "unknown")
             + (" (data/ differed from data.dvc)" if tags.get(names.TAG_DATA_DIRTY) == "true" else "")),
            ("code (git commit)", tags.get(names.TAG_GIT_COMMIT, "unknown")
             + (" (uncommitted changes)" if tags.get(names.TAG_GIT_DIRTY) == "true" else "")),
            ("pipeline run", f"{pipeline} {pipeline_run_id or 'unknown'}"),
            ("trained model", tags.get(names.TAG_MODEL_URI, "—")),
            ("served from", tags.get(names.TAG_PUSHED_PATH, "—")),
        ],
        "training": training,
        "hyperparameters": [(k, json.dumps(v) if not isinstance(v, str) else v)
                            for k, v in sorted(hyperparameters.items())],
        "baseline": baseline or "none",
        # The only split the Evaluator reads (pipelines/factory.py).
        "evaluated_split": TEST_SPLIT,
        "first_model": not baseline or baseline.startswith("none"),
        "thresholds": _threshold_checks(ordered, thresholds),
        "columns": columns,
        "rows": rows,
        "infra": None if infra is None else {
            "blessed": bool(infra.get("blessed")), "reason": infra.get("reason") or "", "latency": latency,
        },
    }


def _md(value: Any) -> str:
    """A Markdown table cell: no pipes or line breaks."""
    return str(value).replace("|", "\\|").replace("\n", " ")


@functools.lru_cache(maxsize=2)
def _environment(html: bool):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md
    return env


def render(context: Mapping[str, Any]) -> Tuple[str, str]:
    """(Markdown, HTML) of a card_context()."""
    markdown = _environment(False).get_template(MARKDOWN_FILE + ".j2").render(**context)
    html = _environment(True).get_template(HTML_FILE + ".j2").render(**context)
    return markdown, html
