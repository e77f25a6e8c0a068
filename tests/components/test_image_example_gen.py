"""The image ExampleGen: a corrupt image is skipped, counted and never becomes an example."""
from __future__ import annotations

from pipelines import lineage
from pipelines.outcome import data_notes
from tests.csv_data import records as _records


def test_corrupt_image_is_skipped_counted_and_never_reaches_training(tmp_path):
    """The ImageExampleGen executor on a folder with one truncated JPEG. (The full pets run with a
    corrupt file, blessed and pushed on the good images, is tests/test_e2e_pets.py.)"""
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components import data_version as dv
    from components import image_example_gen as ieg
    from tests.pets_images import write_pets, write_truncated_jpeg

    write_pets(tmp_path / "pets", per_class=6, seed=3)
    write_truncated_jpeg(tmp_path / "pets" / "cat" / "cat.broken.jpg")
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    ieg.ImageExampleGenExecutor().Do({}, {"examples": [examples]}, {
        "input_base": str(tmp_path / "pets"),
        "input_config": proto_utils.proto_to_json(example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="images", pattern=ieg.INPUT_PATTERN)])),
        "output_config": proto_utils.proto_to_json(ieg.split_output_config((4, 1))),
        "custom_config": proto_utils.proto_to_json(dv.to_custom_config({"md5": "untracked", "dirty": True})),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    })
    assert examples.get_int_custom_property("skipped_count") == 1
    assert examples.get_string_custom_property("skipped_files") == "cat/cat.broken.jpg"
    names = [e.features.feature["filename"].bytes_list.value[0].decode()
             for split in ("train", "eval") for e in _records(examples.uri, split)]
    assert len(names) == 12 and "cat/cat.broken.jpg" not in names
    record = lineage.ArtifactRecord(0, "Examples", examples.uri, "examples", {
        "skipped_count": 1, "skipped_files": "cat/cat.broken.jpg"})
    assert data_notes(record) == ["1 input record(s) skipped (not used for training): cat/cat.broken.jpg"]
