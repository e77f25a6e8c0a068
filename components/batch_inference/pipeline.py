"""Batch inference as a Beam pipeline: raw input -> tf.Examples -> RunInference -> an output CSV.

    files --read (readers.py)--> (Row, example) --RunInference(SavedModelHandler)--> (Row, result)
          \\--> rejects                                         \\--> rejects (the model refused it)

The pipeline writes its rows (CSV records led by a sortable key) and rejects (JSON lines) as one
shard per bundle into a staging folder (next to the output, or `staging_root`: a folder every
worker and the driver can reach, for a distributed runner); the driver then writes them, sorted
back into the input order, as `output` (carried columns, then the prediction) and the rejects file
(location, reason, the raw cells). The
DirectRunner runs it on a laptop; the task's Beam args (another runner, more workers) scale it out.
"""
from __future__ import annotations

import contextlib
import csv
import gc
import glob
import io
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import apache_beam as beam
import numpy as np

from components.batch_inference import metrics as label_metrics
from components.batch_inference import readers
from components.batch_inference.handler import ModelError, SavedModelHandler
from components.batch_inference.readers import InputError, InputPlan, Reject
from components.batch_inference.schema import ServingSchema

PREDICTION_COLUMN = "prediction"
# Where each output row came from (`file:line`, or the image's name), as the rejects' `location`:
# the key that joins the output back to the input when it has no id column.
ROW_COLUMN = "input_row"
PROBABILITY_PREFIX = "probability_"
REJECT_COLUMNS = ("location", "reason")
# Rejects kept in memory for the summary (all of them go to the rejects file).
FIRST_REJECTS = 20


@dataclass(frozen=True)
class ModelSpec:
    """What the model takes and returns (from the task declaration)."""

    model_dir: str
    schema: ServingSchema
    output_key: str  # "probabilities" (classifiers) or a score such as "similarity"
    class_names: Sequence[str] = ()
    custom_op_modules: Sequence[str] = ()
    positive_class_id: Optional[int] = 1

    @property
    def is_classifier(self) -> bool:
        return bool(self.class_names)

    def output_columns(self) -> List[str]:
        if self.is_classifier:
            return [PREDICTION_COLUMN] + [PROBABILITY_PREFIX + str(c) for c in self.class_names]
        return [self.output_key]


@dataclass
class PredictOutcome:
    output: str
    rejects_path: str
    total: int  # input rows (csv records, files)
    predicted: int
    rejected: int
    seconds: float
    columns: List[str]
    first_rejects: List[Reject] = field(default_factory=list)
    metrics: Optional[Dict[str, float]] = None

    @property
    def rows_per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else float("nan")


class _Progress:
    """Rows done so far, counted by the pipeline's last steps (in-process runners only)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.done = 0
        self.rejected = 0

    def add(self, done: int = 0, rejected: int = 0) -> None:
        with self.lock:
            self.done += done
            self.rejected += rejected


_PROGRESS: Dict[str, _Progress] = {}


def order_key(order: Sequence[int]) -> str:
    """A key whose text order is the input order (file number, line)."""
    return f"{order[0]:08d}{order[1]:012d}"


class _Format(beam.DoFn):
    """PredictionResult(Rows, outputs) of a chunk -> its CSV records [order key, carried…,
    outputs…] as one text element, and a tagged Reject JSON line per example the model refused."""

    def __init__(self, carried_index: Sequence[int], spec: ModelSpec, progress_id: str):
        self._carried_index = tuple(carried_index)
        self._classes = tuple(spec.class_names)
        self._progress_id = progress_id

    def process(self, result):
        scored = []
        for row, value in zip(result.example, result.inference):
            if isinstance(value, ModelError):
                reject = Reject(row.order, row.location, f"the model refused the example: {value.message}", row.cells)
                yield beam.pvalue.TaggedOutput(readers.REJECTED, reject_json(reject))
            else:
                scored.append((row, value))
        progress = _PROGRESS.get(self._progress_id)
        if progress:
            progress.add(done=len(result.example), rejected=len(result.example) - len(scored))
        if not scored:
            return
        values = np.stack([np.asarray(v, dtype=np.float64).reshape(-1) for _, v in scored])
        numbers = np.char.mod("%.6g", values).tolist()
        if self._classes:
            names = [self._classes[i] for i in np.argmax(values, axis=1).tolist()]
            numbers = [[name, *n] for name, n in zip(names, numbers)]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        carried = self._carried_index
        writer.writerows([order_key(row.order), *[row.cells[i] for i in carried], *n, row.location]
                         for (row, _), n in zip(scored, numbers))
        yield buffer.getvalue()[:-1]  # the shard writer adds the last newline


def reject_json(reject: Reject) -> str:
    return json.dumps([list(reject.order), reject.location, reject.reason, list(reject.cells)])


def _count_rejects(line: str, progress_id: str) -> str:
    progress = _PROGRESS.get(progress_id)
    if progress:
        progress.add(done=1, rejected=1)
    return line


def distributes(beam_args: Sequence[str]) -> bool:
    """Whether the pipeline runs on more than one worker (then chunks are redistributed before
    inference, so one big input file does not keep the inference on one worker). A single
    in-process DirectRunner worker gains nothing from that and pays a GroupByKey of every chunk."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

    options = PipelineOptions(list(beam_args))
    runner = options.view_as(StandardOptions).runner
    if runner not in (None, "DirectRunner", "direct", "BundleBasedDirectRunner", "SwitchingDirectRunner"):
        return True
    workers = options.view_as(DirectOptions).direct_num_workers
    return workers is not None and workers != 1  # 0: one per CPU


def build(pipeline: beam.Pipeline, plan: InputPlan, spec: ModelSpec, batch_size: int, staging: str, progress_id: str,
          redistribute: bool = True):
    """The batch inference transforms, writing shards under `staging`."""
    from apache_beam.ml.inference.base import RunInference

    handler = SavedModelHandler(spec.model_dir, spec.output_key, batch_size, spec.custom_op_modules)
    files = pipeline | "ListFiles" >> beam.Create(list(enumerate(plan.files)))
    if plan.form == readers.IMAGE_FOLDER:
        files = files | "DistributeFiles" >> beam.Reshuffle()
    read = files | "Read" >> beam.ParDo(readers.read_transform(plan, spec.schema, batch_size)).with_outputs(
        readers.REJECTED, main="examples")
    chunks = read["examples"]
    if plan.form == readers.IMAGE_FOLDER:
        chunks = chunks | "Chunk" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
    if redistribute:
        chunks = chunks | "Distribute" >> beam.Reshuffle()
    scored = (
        chunks
        | "RunInference" >> RunInference(handler.with_no_batching())
        | "Format" >> beam.ParDo(_Format(plan.carried_index, spec, progress_id)).with_outputs(
            readers.REJECTED, main="rows")
    )
    _ = scored["rows"] | "WriteRows" >> beam.ParDo(_WriteShards(staging, "rows", ".csv"))
    input_rejects = (read[readers.REJECTED] | "RejectToJson" >> beam.Map(reject_json)
                     | "CountRejects" >> beam.Map(_count_rejects, progress_id))
    _ = ((input_rejects, scored[readers.REJECTED]) | "AllRejects" >> beam.Flatten()
         | "WriteRejects" >> beam.ParDo(_WriteShards(staging, "rejects", ".jsonl")))


def _makedirs(path: str) -> None:
    import tensorflow as tf

    os.makedirs(path, exist_ok=True) if _is_local(path) else tf.io.gfile.makedirs(path)


def _remove_tree(path: str) -> None:
    import tensorflow as tf

    if _is_local(path):
        shutil.rmtree(path, ignore_errors=True)
    elif tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)


@contextlib.contextmanager
def _no_gc():
    """No cyclic garbage collection while reading back tens of thousands of small lists: they hold
    no cycles, and a full collection over the TensorFlow/Beam heap takes a good part of a second."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _WriteShards(beam.DoFn):
    """Text elements -> one file per bundle, `<prefix>-<uuid><suffix>` under staging, renamed into
    place only when the bundle is done (a failed bundle leaves a hidden temp file, never read).
    Cheaper than WriteToText's finalisation steps, which would cost about half a second per run."""

    def __init__(self, staging: str, prefix: str, suffix: str):
        self._staging, self._prefix, self._suffix = staging, prefix, suffix

    def start_bundle(self):
        self._file = self._tmp = None

    def process(self, text: str):
        import tensorflow as tf

        if self._file is None:
            self._name = f"{self._prefix}-{uuid.uuid4().hex}{self._suffix}"
            self._tmp = _join(self._staging, f".{self._name}.tmp")
            self._file = open(self._tmp, "w", encoding="utf-8") if _is_local(self._staging) else tf.io.gfile.GFile(self._tmp, "w")
        self._file.write(text)
        self._file.write("\n")

    def finish_bundle(self):
        import tensorflow as tf

        if self._file is not None:
            self._file.close()
            tf.io.gfile.rename(self._tmp, _join(self._staging, self._name), overwrite=True)
            self._file = None


def _is_local(path: str) -> bool:
    return "://" not in path


def _join(folder: str, name: str) -> str:
    return os.path.join(folder, name) if _is_local(folder) else folder.rstrip("/") + "/" + name


def _shards(staging: str, prefix: str) -> List[str]:
    import tensorflow as tf

    if _is_local(staging):
        return sorted(glob.glob(os.path.join(glob.escape(staging), prefix + "-*")))
    return sorted(tf.io.gfile.glob(_join(staging, prefix + "-*")))


def _open_text(path: str):
    import tensorflow as tf

    return open(path, newline="", encoding="utf-8") if _is_local(path) else tf.io.gfile.GFile(path, "r")


def _read_rows(staging: str) -> List[list]:
    """The output records of every shard, sorted by their order key (which is dropped; a record a
    retried bundle wrote twice is kept once)."""
    records: List[list] = []
    with _no_gc():
        for path in _shards(staging, "rows"):
            with _open_text(path) as f:
                records.extend(csv.reader(f))
        records.sort(key=lambda r: r[0])
        return [r[1:] for i, r in enumerate(records) if i == 0 or r[0] != records[i - 1][0]]


def _read_rejects(staging: str) -> List[list]:
    records = []
    with _no_gc():
        for path in _shards(staging, "rejects"):
            with _open_text(path) as f:
                records.extend(json.loads(line) for line in f if line.strip())
    records.sort(key=lambda r: tuple(r[0]))
    return [r for i, r in enumerate(records) if i == 0 or r[0] != records[i - 1][0]]


def check_writable(path: str) -> None:
    """InputError unless a file can be created at path (its folder exists and is writable)."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise InputError(f"cannot write {path}: folder {folder} does not exist (create it first)")
    if os.path.isdir(path):
        raise InputError(f"cannot write {path}: it is a folder (give a file name such as {os.path.join(path, 'predictions.csv')})")
    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {path}: folder {folder} is not writable (choose another --output)")


def predict(
    spec: ModelSpec,
    input_path: str,
    form: str,
    output: str,
    rejects_path: Optional[str] = None,
    batch_size: int = 256,
    beam_args: Sequence[str] = (),
    label_column: Optional[str] = None,
    on_progress: Optional[Callable[[int, int, int], None]] = None,
    poll_seconds: float = 0.2,
    staging_root: Optional[str] = None,
) -> PredictOutcome:
    """Predict every row of the input; on_progress(done, rejected, total) is called while it runs."""
    rejects_path = rejects_path or output + ".rejects.csv"
    for path in (output, rejects_path):
        check_writable(path)
    plan = readers.plan_input(form, input_path, spec.schema)
    inputs = {os.path.abspath(os.path.join(plan.root, f)) for f in plan.files}
    for path in (output, rejects_path):
        if os.path.abspath(path) in inputs:
            raise InputError(f"{path} is an input file: writing it would overwrite the input (choose another --output)")
    columns = list(plan.carried) + spec.output_columns() + [ROW_COLUMN]
    clash = sorted(set(plan.carried) & set(spec.output_columns() + [ROW_COLUMN]))
    if clash:
        raise InputError(f"the input has column(s) {', '.join(clash)}, which the output uses for the model's answer; rename them")
    if label_column is not None:
        label_metrics.check_label_column(label_column, plan.carried, plan.columns, spec.is_classifier)
    total = readers.count_rows(plan)
    parts = f".{os.path.basename(output)}.parts-{uuid.uuid4().hex[:8]}"
    staging = _join(staging_root, parts) if staging_root else os.path.join(os.path.dirname(os.path.abspath(output)), parts)
    _makedirs(staging)
    progress_id = uuid.uuid4().hex
    _PROGRESS[progress_id] = progress = _Progress()
    start = time.perf_counter()
    try:
        redistribute = distributes(beam_args)
        _run(lambda p: build(p, plan, spec, batch_size, staging, progress_id, redistribute), beam_args,
             lambda: on_progress and on_progress(progress.done, progress.rejected, total), poll_seconds)
        rows = _read_rows(staging)
        rejects = _read_rejects(staging)
        _write_csv(output, columns, rows)
        raw = list(plan.columns) if plan.form == readers.CSV else list(plan.carried)
        _write_csv(rejects_path, list(REJECT_COLUMNS) + raw, ([r[1], r[2], *_padded(r[3], len(raw))] for r in rejects))
    finally:
        _PROGRESS.pop(progress_id, None)
        _remove_tree(staging)
    seconds = time.perf_counter() - start
    if on_progress:
        on_progress(len(rows) + len(rejects), len(rejects), len(rows) + len(rejects))
    metrics = None
    if label_column is not None:
        metrics = label_metrics.from_rows(rows, plan.carried.index(label_column), len(plan.carried) + 1,
                                          spec.class_names, spec.positive_class_id)
    first = [Reject(tuple(r[0]), r[1], r[2], tuple(r[3])) for r in rejects[:FIRST_REJECTS]]
    return PredictOutcome(output, rejects_path, len(rows) + len(rejects), len(rows), len(rejects), seconds, columns, first, metrics)


def _run(build_fn, beam_args: Sequence[str], tick: Callable[[], None], poll_seconds: float) -> None:
    """Run the pipeline in a thread, calling tick() every poll_seconds until it ends."""
    from apache_beam.options.pipeline_options import PipelineOptions

    errors: List[BaseException] = []

    def target():
        try:
            with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
                build_fn(pipeline)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    quiet = _QuietBeamMemoryWarning()
    logging.getLogger().addFilter(quiet)
    thread = threading.Thread(target=target, name="batch-inference", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(poll_seconds)
            tick()
    finally:
        logging.getLogger().removeFilter(quiet)
    if errors:
        raise errors[0]


def _padded(cells: Sequence[str], width: int) -> List[str]:
    """A short record's cells padded to the header's width (a long one keeps its extra cells)."""
    return list(cells) + [""] * (width - len(cells))


class _QuietBeamMemoryWarning(logging.Filter):
    """Beam's RunInference warns on every batch that it cannot read the memory usage when its
    optional model manager does not import (beam 2.74); nothing is wrong with the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "memory usage cannot be fetched" not in record.getMessage()


def _write_csv(path: str, header: Sequence[str], rows) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)
