"""Training curves: the TensorBoard scalars of the Trainer's ModelRun, drawn per epoch (train vs
validation), and each metric's last value."""
from __future__ import annotations

import glob
import os
from typing import Dict, List

from pipelines import nodes
from pipelines.report.charts import inline_png, training_figure
from pipelines.report.formatting import fmt_value
from pipelines.report.sections.base import RunInputs, Section


def read_scalars(log_dir: str) -> Dict[str, Dict[str, List[tuple]]]:
    """tag -> series (sub-directory, e.g. 'train' / 'validation') -> [(step, value)] from the
    TensorBoard event files under log_dir."""
    import tensorflow as tf

    result: Dict[str, Dict[str, List[tuple]]] = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True)):
        series = os.path.relpath(os.path.dirname(path), log_dir)
        series = "run" if series == "." else series
        for raw in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    number = float(value.simple_value)
                elif kind == "tensor":
                    array = tf.make_ndarray(value.tensor)
                    if array.size != 1 or array.dtype.kind not in "fiu":
                        continue
                    number = float(array.reshape(()))
                else:
                    continue
                result.setdefault(value.tag, {}).setdefault(series, []).append((event.step, number))
    for by_series in result.values():
        for points in by_series.values():
            points.sort()
    return result


def _short(tag: str) -> str:
    return tag[len("epoch_"):] if tag.startswith("epoch_") else tag


def build(section: Section, run: RunInputs) -> None:
    model_run = run.output(nodes.TRAINER, "model_run")
    if model_run is None:
        section.message = run.missing(nodes.TRAINER)
        return
    section.data["uri"] = model_run.uri
    scalars = read_scalars(model_run.uri)
    fig, tags = training_figure(scalars)
    if fig is None:
        section.message = f"no TensorBoard scalars under {model_run.uri}"
        return
    last = []
    for tag in tags:
        cells = {name: points[-1][1] for name, points in scalars[tag].items() if points}
        last.append({"tag": _short(tag), "values": {k: fmt_value(v) for k, v in sorted(cells.items())},
                     "epochs": max(len(points) for points in scalars[tag].values())})
    section.data["last"] = last
    section.data["series"] = sorted({name for tag in tags for name in scalars[tag]})
    section.data["epochs"] = max((row["epochs"] for row in last), default=0)
    section.data["image"] = inline_png(fig)
