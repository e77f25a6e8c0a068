"""Training throughput, measured the same way for every task and framework.

Every training batch but the very first (which traces the train function) is timed from its
start to its end, so validation passes and callbacks between epochs are left out; the figure is
examples per second over those batches. The callback exists for Keras 3 and for tf_keras:
`throughput_callback(keras_module, batch_size)` returns the one `fit` expects.
"""
from __future__ import annotations

import functools
import time


class ThroughputMeter:
    """Counts timed training batches; mixed into a framework's Callback class."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = int(batch_size)
        self.epochs = []
        self._batch_start = None
        self._first_batch_seen = False

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append({"epoch": int(epoch), "steps": 0, "seconds": 0.0})

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if not self._first_batch_seen:
            self._first_batch_seen = True
            return
        if not self.epochs:  # a fit without epoch callbacks: count in one bucket
            self.on_epoch_begin(0)
        self.epochs[-1]["steps"] += 1
        self.epochs[-1]["seconds"] += time.perf_counter() - self._batch_start

    @property
    def examples(self) -> int:
        return sum(e["steps"] for e in self.epochs) * self.batch_size

    @property
    def seconds(self) -> float:
        return sum(e["seconds"] for e in self.epochs)

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    def summary(self, unit: str = "examples") -> dict:
        """The figures under `unit` names (e.g. "images" -> images_per_second and images)."""
        return {
            f"{unit}_per_second": round(self.examples_per_second, 2),
            unit: self.examples,
            "train_seconds": round(self.seconds, 2),
            "batch_size": self.batch_size,
            "epochs": [{**e, "seconds": round(e["seconds"], 3)} for e in self.epochs],
        }


@functools.lru_cache(maxsize=None)
def _callback_class(keras_module):
    return type("Throughput", (ThroughputMeter, keras_module.callbacks.Callback), {})


def throughput_callback(keras_module, batch_size: int) -> ThroughputMeter:
    """A throughput callback for `keras_module` (keras or tf_keras): a Callback and a ThroughputMeter."""
    return _callback_class(keras_module)(batch_size)
