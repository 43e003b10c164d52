import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_model

from course_utils import gguf as course_gguf
from course_utils import loading


def _fake_convert(out_dir):
    """Stand-in for the slow GGUF conversion: save a tiny model with the real save_pretrained."""
    tiny_model("tinyllama-1.1b").save_pretrained(out_dir)


def test_crash_mid_write_leaves_no_loadable_cache(course_cache, monkeypatch):
    def crashing(spec, out_dir):
        _fake_convert(out_dir)
        with open(out_dir / "model.safetensors", "r+b") as f:  # half-written weights
            f.truncate(1000)
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(loading, "_convert_gguf", crashing)
    with pytest.raises(KeyboardInterrupt):
        loading.ensure_cached("smollm2-135m-instruct", progress=None)
    final = loading.cache_dir("smollm2-135m-instruct")
    assert not final.exists()
    assert not loading.is_cached("smollm2-135m-instruct")
    assert [p.name for p in final.parent.iterdir() if not p.name.endswith(".lock")] == []  # no temporary folder

    # the next call rebuilds the cache and the model loads from it
    monkeypatch.setattr(loading, "_convert_gguf", lambda spec, out: _fake_convert(out))
    model = loading.load_model("smollm2-135m-instruct")
    assert loading.is_cached("smollm2-135m-instruct")
    assert model.config.hidden_size == 64
    marker = json.loads((final / loading.COMPLETE_MARKER).read_text())
    assert marker["model"] == "smollm2-135m-instruct"


def test_folder_without_marker_is_rebuilt(course_cache, monkeypatch):
    final = loading.cache_dir("smollm2-135m-instruct")
    final.mkdir(parents=True)
    (final / "config.json").write_text("{broken")
    monkeypatch.setattr(loading, "_convert_gguf", lambda spec, out: _fake_convert(out))
    assert loading.ensure_cached("smollm2-135m-instruct", progress=None) == final
    assert json.loads((final / "config.json").read_text())["hidden_size"] == 64


def test_cache_key_has_gguf_hash_and_transformers_version(course_cache):
    import transformers

    name = loading.cache_dir("smollm2-135m-instruct").name
    assert name == f"{course_gguf.gguf_sha256('smollm2-135m-instruct')[:16]}-tf{transformers.__version__}"


def test_real_conversion_loads_and_matches_architecture(smollm2):
    from transformers import AutoModelForCausalLM

    assert smollm2.config.hidden_size == 576
    assert smollm2.config.num_hidden_layers == 30
    assert not hasattr(smollm2.config, "quantization_config")
    assert smollm2.dtype == torch.float32
    assert os.path.exists(loading.cache_dir("smollm2-135m-instruct") / "model.safetensors")
    # the cached weights are exactly what transformers reads from the GGUF on its own (no memo, no rebuild)
    path = course_gguf.gguf_path("smollm2-135m-instruct")
    plain = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).state_dict()
    cached = smollm2.state_dict()
    assert cached.keys() == plain.keys() and all(torch.equal(cached[k], plain[k]) for k in plain)


@pytest.mark.parametrize("key", ["smollm2-135m-instruct", "gemma-3-270m"])
def test_read_gguf_gives_the_weights_transformers_reads(key):
    """course_utils.gguf.read_gguf fills a model tensor by tensor (transformers 5.23's one call holds every tensor
    de-quantized at once, 08's peak on demo). Each offline model's GGUF must give exactly the weights transformers
    gives: SmolLM2's Q4_1 (Llama: transformers un-permutes its q/k rows), Gemma-3's Q4_K_M (its norms are stored as
    1 + w, which transformers' Gemma processor undoes; its embedding is read in blocks of rows). Compared by digest,
    so the two models are not in memory together.

    The header is parsed once for both sides (``gguf_parsed_once``): Gemma's 262,144-token header takes 22-28 s to
    parse here, and the memo hands out the same read-only parse. Both sides read their header through gguf-py's
    parser either way; what is compared is what each makes of it (names, permutations, de-quantization, norms). That
    the memo changes no weight follows for SmolLM2 from two checks: here, read_gguf's weights equal transformers'
    memoized load; in ``test_real_conversion_loads_and_matches_architecture``, the course cache (read_gguf's weights,
    saved) equals transformers' memo-free load, tensor by tensor."""
    import hashlib

    from transformers import AutoModelForCausalLM

    def digests(model):
        return {k: (tuple(v.shape), v.dtype, hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest())
                for k, v in model.state_dict().items()}

    path = course_gguf.gguf_path(key)
    with course_gguf.gguf_parsed_once():
        ours, _ = course_gguf.read_gguf(path, tokenizer=False)
        mine = digests(ours)
        del ours
        theirs = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        theirs = digests(theirs)
    assert mine.keys() == theirs.keys()
    assert [k for k in theirs if mine[k] != theirs[k]] == []


def test_a_gguf_model_that_keeps_its_quantizer_is_saved_as_a_plain_model(course_cache, monkeypatch, tmp_path):
    """An architecture on transformers' newer GGUF path comes back from read_gguf with a "gguf" quantization config
    (which refuses save_pretrained); the conversion saves a plain model with the same weights instead."""
    from transformers import AutoModelForCausalLM

    from course_utils.models import get_spec

    model = tiny_model("tinyllama-1.1b")
    model.config.quantization_config = {"quant_method": "gguf"}
    model.hf_quantizer = object()

    class Tokenizer:
        def save_pretrained(self, folder):
            (Path(folder) / "tokenizer.json").write_text("{}", encoding="utf-8")

    monkeypatch.setattr(loading, "read_gguf", lambda path, tokenizer=True: (model, Tokenizer()))
    out = tmp_path / "converted"
    out.mkdir()
    loading._convert_gguf(get_spec("smollm2-135m-instruct"), out)
    saved = AutoModelForCausalLM.from_pretrained(out)
    assert not hasattr(saved.config, "quantization_config") and saved.dtype == torch.float32
    assert all(torch.equal(saved.state_dict()[k], v) for k, v in model.state_dict().items())


def test_read_gguf_names_a_weight_the_file_lacks(tmp_path):
    """A GGUF without one of the model's weights (here: a Llama file with its tensors left out) is refused with the
    file and the weight named, instead of training or comparing a model whose weight is left at random."""
    import gguf

    writer = gguf.GGUFWriter(tmp_path / "partial.gguf", "llama")
    for key, value in {"context_length": 64, "embedding_length": 16, "block_count": 1, "feed_forward_length": 32,
                       "attention.head_count": 2, "attention.head_count_kv": 2,
                       "attention.layer_norm_rms_epsilon": 1e-5}.items():
        getattr(writer, f"add_{'uint32' if isinstance(value, int) else 'float32'}")(f"llama.{key}", value)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"t{i}" for i in range(32)])
    writer.add_token_merges([])
    writer.add_tensor("token_embd.weight", torch.randn(32, 16).numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ValueError, match="partial.gguf: GGUF에 이 가중치가 없습니다: .*model.layers.0"):
        course_gguf.read_gguf(tmp_path / "partial.gguf", tokenizer=False)


def test_truncated_model_is_the_first_blocks_of_the_whole_model(smollm2):
    """smoke's model: the whole model's first 8 blocks with its embeddings, final norm and head; its logits are the
    whole model's run through those blocks only, and it keeps the whole model's tokenizer."""
    from course_utils.adapter import weights_id
    from course_utils.models import build_config, get_spec, resolve_model

    key = "smollm2-135m-first-8-layers"
    small = loading.load_model(key)
    assert small.config.num_hidden_layers == get_spec(key).num_layers == build_config(key).num_hidden_layers == 8
    whole = smollm2.state_dict()
    kept = small.state_dict()
    assert set(kept) == {k for k in whole if not any(f"layers.{i}." in k for i in range(8, 30))}
    assert all(torch.equal(kept[k], whole[k]) for k in kept)
    ids = loading.load_tokenizer(key)("대한민국의 수도는 어디인가요?", return_tensors="pt").input_ids
    assert ids.tolist() == loading.load_tokenizer("smollm2-135m-instruct")("대한민국의 수도는 어디인가요?",
                                                                             return_tensors="pt").input_ids.tolist()
    with torch.no_grad():
        hidden = smollm2.model.embed_tokens(ids)
        positions = torch.arange(ids.shape[1])[None]
        rotary = smollm2.model.rotary_emb(hidden, positions)
        for block in smollm2.model.layers[:8]:
            out = block(hidden, position_embeddings=rotary, position_ids=positions)
            hidden = out[0] if isinstance(out, tuple) else out
        expected = smollm2.lm_head(smollm2.model.norm(hidden))
        assert torch.allclose(small(ids).logits, expected, atol=1e-4)
    # an adapter trained on it is not one for the whole model, and a hub id still names the whole model
    assert weights_id(key) != weights_id("smollm2-135m-instruct")
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "smollm2-135m-instruct"


def test_gguf_parsed_once_hands_out_one_reader_per_file_and_restores_gguf(tmp_path):
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(tmp_path / "tiny.gguf", "llama")
    writer.add_block_count(2)
    writer.add_tensor("token_embd.weight", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader_class, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with course_gguf.gguf_parsed_once():
        first = gguf.GGUFReader(str(tmp_path / "tiny.gguf"))
        assert gguf.GGUFReader(tmp_path / "." / "tiny.gguf") is first
        with course_gguf.gguf_parsed_once():  # read_gguf's own block inside a caller's: the caller's parse
            assert gguf.GGUFReader(str(tmp_path / "tiny.gguf")) is first
        assert gguf.GGUFReader(str(tmp_path / "tiny.gguf")) is first
        assert first.tensors[0].data.tolist() == np.arange(12).reshape(3, 4).tolist()
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2) is gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2).mapping == name_map(gguf.MODEL_ARCH.LLAMA, 2).mapping
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == (reader_class, name_map)
    with pytest.raises(ValueError), course_gguf.gguf_parsed_once():
        raise ValueError("an error inside the block")
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == (reader_class, name_map)


def test_two_starts_at_once_convert_once(course_cache, monkeypatch):
    import threading
    import time

    calls = []

    def slow_convert(spec, out):
        calls.append(1)
        time.sleep(0.5)
        _fake_convert(out)

    monkeypatch.setattr(loading, "_convert_gguf", slow_convert)
    results = []
    threads = [threading.Thread(target=lambda: results.append(loading.ensure_cached("smollm2-135m-instruct", None)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results[0] == results[1] == loading.cache_dir("smollm2-135m-instruct")


def test_killed_cache_conversion_leaves_nothing_that_loads(tmp_path, monkeypatch):
    from course_utils.loading import cache_dir, is_cached, load_model

    env = {"COURSE_CACHE": str(tmp_path / "cache")}
    killed = subprocess.run([sys.executable, str(Path(__file__).parent / "helpers" / "convert_and_kill.py"),
                             "smollm2-135m-instruct"], capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    leftovers = list((tmp_path / "cache").rglob("model.safetensors"))
    assert leftovers, "the helper should have left a half-written file behind"
    monkeypatch.setenv("COURSE_CACHE", env["COURSE_CACHE"])
    assert not is_cached("smollm2-135m-instruct")
    assert not cache_dir("smollm2-135m-instruct").exists()  # only a temporary folder was written
    # the next load rebuilds beside the dead process's leftovers (with the stand-in converter: the real one ran above)
    monkeypatch.setattr(loading, "_convert_gguf", lambda spec, out: _fake_convert(out))
    model = load_model("smollm2-135m-instruct")
    assert is_cached("smollm2-135m-instruct")
    assert model.config.hidden_size == 64


def test_tokenizer_alone_is_cached_without_converting_the_weights(tmp_path, monkeypatch):
    """load_tokenizer on an empty cache reads only the tokenizer, and it tokenizes exactly like the model cache's."""
    loading.ensure_cached("smollm2-135m-instruct", progress=None)  # the session's cache, with the weights
    reference = loading.load_tokenizer("smollm2-135m-instruct")
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    real_convert = loading._convert_gguf

    def no_weights(spec, out):
        raise AssertionError("the weights were converted for a tokenizer")

    monkeypatch.setattr(loading, "_convert_gguf", no_weights)
    tok = loading.load_tokenizer("smollm2-135m-instruct")
    assert not loading.is_cached("smollm2-135m-instruct")
    folder = loading.tokenizer_cache_dir("smollm2-135m-instruct")
    assert (folder / loading.COMPLETE_MARKER).exists() and folder.parent == loading.cache_dir("smollm2-135m-instruct").parent
    text = "### 질문: 한국의 수도는 어디인가요?\n\n### 답변: 서울입니다."
    assert tok(text).input_ids == reference(text).input_ids and tok.eos_token == reference.eos_token
    assert tok.get_vocab() == reference.get_vocab()

    # converting the weights afterwards copies the cached tokenizer instead of reading it from the GGUF again (the
    # weights from a stand-in read_gguf: what is checked is where the tokenizer comes from; the real read is above)
    from transformers import AutoTokenizer

    def weights_only(path, tokenizer=True):
        assert not tokenizer, "the conversion read the tokenizer from the GGUF again"
        return tiny_model("tinyllama-1.1b"), None  # a Llama, as SmolLM2 is

    monkeypatch.setattr(loading, "_convert_gguf", real_convert)
    monkeypatch.setattr(loading, "read_gguf", weights_only)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda *a, **k: pytest.fail("the tokenizer was read twice"))
    loading.ensure_cached("smollm2-135m-instruct", progress=None)
    cached = loading.cache_dir("smollm2-135m-instruct")
    names = [f.name for f in folder.iterdir() if f.name != loading.COMPLETE_MARKER]
    assert "tokenizer.json" in names and all((cached / n).read_bytes() == (folder / n).read_bytes() for n in names)
    # once the weights are converted, the tokenizer comes from the model cache
    assert loading.ensure_tokenizer_cached("smollm2-135m-instruct") == cached


def test_gguf_hash_is_computed_once_per_file_version():
    """cache_dir and weights_id ask for the GGUF's sha256 at every call; the file is hashed once, not each time."""
    course_gguf._file_sha256.cache_clear()
    first = course_gguf.gguf_sha256("smollm2-135m-instruct")
    for _ in range(3):
        assert course_gguf.gguf_sha256("smollm2-135m-instruct") == first
    info = course_gguf._file_sha256.cache_info()
    assert (info.misses, info.hits) == (1, 3)
    assert len(first) == 64 and int(first, 16) >= 0
