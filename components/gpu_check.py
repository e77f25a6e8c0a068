"""A step that asked for a GPU must get one: Kubernetes schedules the pod on a GPU node, but a
driver or device-plugin fault leaves TensorFlow on the CPU, where training is silently 10-50x slower.

`mlops compile` sets REQUIRE_GPU_ENV on the containers of steps that request `nvidia.com/gpu`; the
step entrypoint calls `require_gpu_if_requested()` before the executor runs."""
from __future__ import annotations

import os
import sys
from typing import Callable, List, Optional

REQUIRE_GPU_ENV = "MLOPS_REQUIRE_GPU"


class NoGpuError(RuntimeError):
    """The step requested a GPU and TensorFlow sees none."""


def _visible_gpus() -> List[str]:
    import tensorflow as tf

    return [device.name for device in tf.config.list_physical_devices("GPU")]


def require_gpu_if_requested(visible: Optional[Callable[[], List[str]]] = None, environ=None) -> List[str]:
    """Log the GPUs TensorFlow sees when the step requested some; raise NoGpuError if it sees none.
    Returns the devices (empty when no GPU was requested)."""
    environ = os.environ if environ is None else environ
    requested = environ.get(REQUIRE_GPU_ENV, "").strip()
    if requested in ("", "0"):
        return []
    devices = (visible or _visible_gpus)()
    print(f"GPUs requested: {requested}; TensorFlow sees: {', '.join(devices) or 'none'}", file=sys.stderr)
    if not devices:
        raise NoGpuError(
            f"this step requested {requested} GPU(s) but TensorFlow sees none: check the node's NVIDIA "
            "driver and device plugin (kubectl describe node) and that the image's TensorFlow is a CUDA build"
        )
    return devices
