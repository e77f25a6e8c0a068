"""ExampleGen for a folder of images in class sub-folders, stamped with the DVC data version.

    <input_base>/<class>/<file>   (e.g. data/pets/cat/cat.0.jpg)
      -> tf.Example {image: encoded bytes, label: b"<class>", filename: b"<class>/<file>"}

Only files that start with the JPEG or PNG magic bytes *and* decode are kept. Anything else (a
truncated or corrupt photo, a stray Thumbs.db) is skipped with a warning naming it; the Examples
artifact records how many files were skipped and which (custom properties `skipped_count`,
`skipped_files`), and the full list with reasons is written next to the splits as
`ingest_report-*.json`. The train/validation/test split hashes the `filename` feature (ExampleGen's
`partition_feature_name`), so a file's split depends on its name only.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs

from components import data_version as dv
from components.example_gen import split_output_config as csv_split_output_config

IMAGE_FEATURE = "image"
LABEL_FEATURE = "label"
FILENAME_FEATURE = "filename"
# <class folder>/<file>
INPUT_PATTERN = "*/*"

# Custom properties on the Examples artifact.
PROP_IMAGE_COUNT = "image_count"
PROP_SKIPPED_COUNT = "skipped_count"
PROP_SKIPPED_FILES = "skipped_files"
# At most this many names go into the `skipped_files` property; the report file has all of them.
MAX_NAMES_IN_PROPERTY = 50

REPORT_PREFIX = "ingest_report-"
# Execution property (set by the executor for its own PTransform) naming the report directory.
_REPORT_DIR_KEY = "_image_ingest_report_dir"

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def image_format(data: bytes) -> Optional[str]:
    """'jpeg' or 'png' from the file's magic bytes, else None."""
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    if data.startswith(PNG_MAGIC):
        return "png"
    return None


def _short_tf_error(exc: tf.errors.OpError) -> str:
    """The gist of a TF op error, without the function-node prefix and op suffix."""
    message = (exc.message or type(exc).__name__).strip().splitlines()[0]
    message = re.sub(r"\{\{.*?\}\}\s*", "", message)
    return re.sub(r"\s*\[Op:\w+\]$", "", message).strip()


def why_unusable(data: bytes) -> Optional[str]:
    """None for a JPEG/PNG that decodes to a non-empty image, else the reason it can't be used."""
    if not data:
        return "empty file"
    kind = image_format(data)
    if kind is None:
        return "not a JPEG or PNG (magic bytes %s)" % data[:8].hex()
    try:
        # The same decoder the Transform graph uses, so whatever passes here decodes there too.
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except tf.errors.OpError as exc:
        return f"{kind} does not decode: {_short_tf_error(exc)}"
    if image.shape[0] == 0 or image.shape[1] == 0:
        return f"{kind} decodes to an empty image"
    return None


def relative_name(path: str) -> Tuple[str, str]:
    """(class name, '<class>/<file>') of a file two levels below the input base."""
    directory, file_name = os.path.split(path.rstrip("/"))
    label = os.path.basename(directory)
    return label, f"{label}/{file_name}"


def make_example(data: bytes, label: str, filename: str) -> tf.train.Example:
    def _bytes(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    return tf.train.Example(
        features=tf.train.Features(
            feature={
                IMAGE_FEATURE: _bytes(data),
                LABEL_FEATURE: _bytes(label.encode("utf-8")),
                FILENAME_FEATURE: _bytes(filename.encode("utf-8")),
            }
        )
    )


class _ReadImage(beam.DoFn):
    """path -> tf.Example, or a ('skipped', (filename, reason)) tagged output. Never raises for a
    bad file; kept images also go to a 'kept' output (their class) for the report."""

    SKIPPED = "skipped"
    KEPT = "kept"

    def __init__(self):
        self._read = beam.metrics.Metrics.counter("image_example_gen", "images_read")
        self._skipped = beam.metrics.Metrics.counter("image_example_gen", "files_skipped")

    def process(self, path: str) -> Iterable[Union[tf.train.Example, beam.pvalue.TaggedOutput]]:
        label, filename = relative_name(path)
        try:
            with fileio.open(path, "rb") as f:
                data = f.read()
        except (OSError, tf.errors.OpError) as exc:
            reason = f"unreadable: {exc}"
        else:
            reason = why_unusable(data)
        if reason:
            self._skipped.inc()
            logging.warning("ImageExampleGen: skipping %s: %s", filename, reason)
            yield beam.pvalue.TaggedOutput(self.SKIPPED, (filename, reason))
            return
        self._read.inc()
        yield beam.pvalue.TaggedOutput(self.KEPT, label)
        yield make_example(data, label, filename)


def _write_report(_, path: str, class_counts: List[Tuple[str, int]], skipped: List[Tuple[str, str]]) -> None:
    report = {
        "images": dict(sorted(class_counts)),
        "skipped": [{"file": name, "reason": reason} for name, reason in sorted(skipped)],
    }
    with fileio.open(path, "w") as f:
        f.write(json.dumps(report, indent=1))


def list_files(input_base: str, pattern: str) -> List[str]:
    """Files (not directories) matching pattern under input_base, sorted."""
    matches = fileio.glob(os.path.join(input_base, pattern))
    return sorted(m for m in matches if not fileio.isdir(m))


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _ImageFolderToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str):
    """Reads <input_base>/<split_pattern> (class sub-folders) into tf.Examples; writes the ingest
    report (class counts, skipped files) when the executor asked for one."""
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    files = list_files(input_base, split_pattern)
    logging.info("ImageExampleGen: %d files match %s", len(files), os.path.join(input_base, split_pattern))
    results = (
        pipeline
        | "ListFiles" >> beam.Create(files)
        | "Distribute" >> beam.Reshuffle()
        | "ReadImages" >> beam.ParDo(_ReadImage()).with_outputs(_ReadImage.SKIPPED, _ReadImage.KEPT, main="examples")
    )
    report_dir = exec_properties.get(_REPORT_DIR_KEY)
    if report_dir:
        digest = hashlib.sha256(split_pattern.encode("utf-8")).hexdigest()[:8]
        path = os.path.join(report_dir, f"{REPORT_PREFIX}{digest}.json")
        counts = (
            results[_ReadImage.KEPT]
            | "CountPerClass" >> beam.combiners.Count.PerElement()
            | "CountsToList" >> beam.combiners.ToList()
        )
        skipped = results[_ReadImage.SKIPPED] | "SkippedToList" >> beam.combiners.ToList()
        _ = (
            pipeline
            | "ReportTrigger" >> beam.Create([None])
            | "WriteReport" >> beam.Map(
                _write_report, path, beam.pvalue.AsSingleton(counts), beam.pvalue.AsSingleton(skipped)
            )
        )
    return results["examples"]


def read_reports(report_dir: str) -> Dict[str, Any]:
    """The merged ingest reports in report_dir: {'images': {class: n}, 'skipped': [{file, reason}]}."""
    merged: Dict[str, Any] = {"images": {}, "skipped": []}
    for path in sorted(fileio.glob(os.path.join(report_dir, REPORT_PREFIX + "*.json"))):
        with fileio.open(path, "r") as f:
            report = json.loads(f.read())
        for label, n in report.get("images", {}).items():
            merged["images"][label] = merged["images"].get(label, 0) + int(n)
        merged["skipped"].extend(report.get("skipped", []))
    return merged


def skipped_files_property(names: List[str], limit: int = MAX_NAMES_IN_PROPERTY) -> str:
    """Comma-separated names, truncated to `limit` with a pointer to the report file."""
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", … (+{len(names) - limit} more, see {REPORT_PREFIX}*.json in the artifact)"
    return shown


class ImageExampleGenExecutor(BaseExampleGenExecutor):
    """FileBasedExampleGen executor for class-folder images; stamps the data version, the image
    count and the skipped files on the Examples artifact."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ImageFolderToExample

    def Do(self, input_dict, output_dict, exec_properties):
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        report_dir = examples.uri
        fileio.makedirs(report_dir)
        super().Do(input_dict, output_dict, {**exec_properties, _REPORT_DIR_KEY: report_dir})

        report = read_reports(report_dir)
        image_count = sum(report["images"].values())
        skipped = report["skipped"]
        names = [s["file"] for s in skipped]
        if skipped:
            logging.warning(
                "ImageExampleGen: skipped %d file(s) that are not decodable JPEG/PNG images: %s",
                len(skipped), "; ".join(f"{s['file']} ({s['reason']})" for s in skipped[:MAX_NAMES_IN_PROPERTY]),
            )
        logging.info("ImageExampleGen: %d images (per class: %s), %d file(s) skipped",
                     image_count, report["images"], len(skipped))
        if image_count == 0:
            raise ValueError(
                f"no decodable JPEG/PNG images under {exec_properties[standard_component_specs.INPUT_BASE_KEY]}"
                f"/{INPUT_PATTERN} ({len(skipped)} file(s) skipped)"
            )
        version = dv.from_exec_properties(exec_properties)
        for artifact in output_dict[standard_component_specs.EXAMPLES_KEY]:
            dv.stamp(artifact, version)
            artifact.set_int_custom_property(PROP_IMAGE_COUNT, image_count)
            artifact.set_int_custom_property(PROP_SKIPPED_COUNT, len(skipped))
            artifact.set_string_custom_property(PROP_SKIPPED_FILES, skipped_files_property(names))


def split_output_config(split_ratio) -> example_gen_pb2.Output:
    """train/validation/test hash buckets on the `filename` feature: deterministic per file name."""
    return csv_split_output_config(split_ratio, partition_feature_name=FILENAME_FEATURE)


def image_example_gen(
    input_base: str,
    data_version: Mapping[str, Any],
    split_ratio,
    component_id: str = "ImageExampleGen",
    output_config: Optional[example_gen_pb2.Output] = None,
):
    """An ExampleGen over <input_base>/<class>/<image> with a deterministic train/validation/test split
    (the TaskConfig.example_gen callable)."""
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="images", pattern=INPUT_PATTERN)]
        ),
        output_config=output_config or split_output_config(split_ratio),
        custom_config=dv.to_custom_config(data_version),
        custom_executor_spec=executor_spec.BeamExecutorSpec(ImageExampleGenExecutor),
    ).with_id(component_id)
