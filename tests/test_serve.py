"""Serving the merged model over an OpenAI-compatible API: llama.cpp's server (the course's default, chosen by
benchmark 5) and transformers serve, each behind the course's request validation."""
import os

import pytest

from course_utils.serve_checks import MAX_BODY_BYTES, parse_body, prompt_problem, request_problem


@pytest.mark.parametrize("path,body,problem", [
    ("/v1/chat/completions", {"messages": []}, "'messages' must be a non-empty list"),
    ("/v1/chat/completions", {"messages": [{"content": "x"}]}, "every message needs a 'role' and a 'content'"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": -1},
     "'max_tokens' must be a whole number >= 1, got -1"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": True},
     "'max_tokens' must be a whole number >= 1, got True"),
    ("/v1/completions", {"prompt": "  "}, "'prompt' must be a non-empty string"),
    ("/v1/completions", {"prompt": "x", "model": "gpt-4"}, "unknown model 'gpt-4': this server serves 'm'"),
    ("/v1/completions", [1, 2], "the request body must be a JSON object"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 8, "model": "m"}, None),
    # what the OpenAI API refuses: sampling values out of range, content a text-only model cannot read
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "temperature": -1},
     "'temperature' must be a number from 0 to 2, got -1"),
    ("/v1/completions", {"prompt": "x", "temperature": "hot"}, "'temperature' must be a number from 0 to 2"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "top_p": 1.5},
     "'top_p' must be a number from 0 to 1, got 1.5"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "frequency_penalty": 3},
     "'frequency_penalty' must be a number from -2 to 2"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "temperature": 2, "top_p": 0}, None),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "이 그림은?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}]},
     "'messages[0].content[1]' is a part of type 'image_url': this server serves a text-only model"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": []}]},
     "'messages[0].content' must be a string or a non-empty list of text parts"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}, None),
])
def test_request_validation(path, body, problem):
    got = request_problem(path, body, "m")
    assert (got is None) if problem is None else problem in got


@pytest.mark.parametrize("extra, problem", [
    ({"n": 3}, "'n': 3 is not supported by this server"),
    ({"logprobs": True}, "'logprobs': True is not supported"),
    ({"presence_penalty": 0.5}, "'presence_penalty': 0.5 is not supported"),
    ({"max_tokens": 10**9}, "'max_tokens' is 1,000,000,000, above this server's cap of 512"),
    ({"n": 1, "user": "x", "logprobs": False, "max_tokens": 512}, None),  # asks nothing the server cannot do
])
def test_fields_the_server_cannot_honour_are_refused_by_name(extra, problem):
    body = {"messages": [{"role": "user", "content": "x"}], **extra}
    got = request_problem("/v1/chat/completions", body, max_tokens_cap=512)
    assert (got is None) if problem is None else problem in got


def test_text_parts_reach_the_engine_as_one_string():
    from course_utils.serve_checks import as_text

    body = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "한국의 "},
                                                                    {"type": "text", "text": "수도는?"}]}]}
    assert as_text(body) == {"model": "m", "messages": [{"role": "user", "content": "한국의 수도는?"}]}
    assert as_text({"messages": [{"role": "user", "content": "x"}]}) == {"messages": [{"role": "user", "content": "x"}]}


def test_a_body_that_is_not_utf8_or_not_json_or_too_large_says_so():
    assert parse_body(b'{"prompt": "x"}') == ({"prompt": "x"}, None)
    assert "not UTF-8 text (byte 12)" in parse_body(b'{"prompt": "\xff\xfe"}')[1]
    assert "not valid JSON" in parse_body(b'{"prompt": ')[1]
    assert "accepts at most" in parse_body(b"x" * (MAX_BODY_BYTES + 1))[1]


def test_a_prompt_longer_than_the_context_is_refused_before_generation():
    from course_utils.loading import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    chat = {"messages": [{"role": "user", "content": "한국의 수도는 어디인가요? " * 4000}]}
    assert "this model's context is 8,192 tokens" in prompt_problem("/v1/chat/completions", chat, tok, 8192)
    short = {"messages": [{"role": "user", "content": "한국의 수도는 어디인가요?"}], "max_tokens": 24}
    assert prompt_problem("/v1/chat/completions", short, tok, 8192) is None
    assert "asks for 9,000 new ones" in prompt_problem("/v1/completions", {"prompt": "x", "max_tokens": 9000}, tok, 8192)


def needs_llama_cpp():
    """Skip without llama-cpp-python (setup builds it; a machine without a C++ compiler may lack it), except where
    COURSE_REQUIRE_LLAMA_CPP=1 (CI): there it fails."""
    from course_utils.serve import llama_cpp_missing

    missing = llama_cpp_missing()
    if missing and os.environ.get("COURSE_REQUIRE_LLAMA_CPP") == "1":
        pytest.fail(f"COURSE_REQUIRE_LLAMA_CPP=1 but {', '.join(missing)} cannot be imported")
    if missing:
        pytest.skip(f"llama-cpp-python's server is not installed ({', '.join(missing)}): "
                    f"python -m course_utils.course setup builds it")


def test_llama_cpp_python_penalises_only_generated_tokens_and_the_course_adds_the_prompt():
    """The smallest reproduction (llama-cpp-python 0.3.36, the offline SmolLM2 GGUF): with a repeat penalty of 50,
    greedy, the first new token after "one two three one two three ... one two" is still " three", a prompt token,
    because the penalty sampler has seen no token yet; transformers' repetition_penalty counts the prompt. The
    course's ``prompt_penalised`` Llama feeds the prompt to the sampler: " three" is no longer picked, and with no
    penalty the answer is unchanged."""
    needs_llama_cpp()
    from llama_cpp import Llama

    from course_utils.gguf import gguf_path
    from course_utils.serve import prompt_penalised

    prompt = " ".join(["one two three"] * 3 + ["one two"])
    settings = {"model_path": str(gguf_path("smollm2-135m-instruct")), "n_ctx": 256, "seed": 0, "verbose": False,
                "last_n_tokens_size": 256}

    def first_token(llm, penalty):
        out = llm.create_completion(prompt, max_tokens=1, temperature=0.0, repeat_penalty=penalty)
        return out["choices"][0]["text"]

    plain, course = Llama(**settings), prompt_penalised(Llama)(**settings)
    assert first_token(plain, 1.0) == " three"  # the pattern's continuation
    assert first_token(plain, 50.0) == " three"  # the library: the prompt is not penalised
    assert first_token(course, 50.0) != " three"  # the course's server: it is
    assert first_token(course, 1.0) == " three"


@pytest.mark.parametrize("engine", ["llama.cpp", "transformers"])
def test_served_model_answers_like_the_model_in_process(merged_smollm2, engine):
    """Start the server, ask through both endpoints (one streaming) and compare with in-process greedy answers:
    transformers serve with the merged model in fp32 (--dtype float32); llama.cpp with the same GGUF through
    llama-cpp-python in this process, prompted in the training format (so the chat template, the decoding defaults
    and the prompt penalty are the server's own). Then malformed requests (HTTP 400 with a message, then it still
    serves) and a mixed load; stop it: no process left."""
    import urllib.error
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    import openai
    import psutil
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from course_utils.inference import generate_answer
    from course_utils.prompts import format_koalpaca
    from course_utils.serve import DEFAULT_GGUF_TYPE, Server, default_gguf, prompt_penalised

    questions = ["한국의 수도는 어디인가요?", "일주일은 며칠인가요?"]
    if engine == "llama.cpp":
        needs_llama_cpp()
        from llama_cpp import Llama

        from course_utils.deploy import export_gguf

        gguf = default_gguf(merged_smollm2)
        if not gguf.exists():
            export_gguf(merged_smollm2, gguf.parent, DEFAULT_GGUF_TYPE)
        llm = prompt_penalised(Llama)(model_path=str(gguf), n_ctx=8192, seed=0, verbose=False, last_n_tokens_size=8192)
        expected = [llm.create_completion(format_koalpaca({"instruction": q, "output": ""})[0], max_tokens=24,
                                          temperature=0.0, repeat_penalty=1.1)["choices"][0]["text"].strip()
                    for q in questions]
        del llm
    else:
        model = AutoModelForCausalLM.from_pretrained(merged_smollm2, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(merged_smollm2)
        expected = [generate_answer(model, tok, q, max_new_tokens=24) for q in questions]
    with Server(merged_smollm2, engine=engine, dtype="float32") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0)
        chat = client.chat.completions.create(model=server.model, max_tokens=24,
                                              messages=[{"role": "user", "content": questions[0]}])
        assert chat.choices[0].message.content.strip() == expected[0]
        text = client.completions.create(model=server.model, max_tokens=24,
                                         prompt=f"### 질문: {questions[1]}\n\n### 답변:").choices[0].text
        assert text.strip() == expected[1]
        stream = client.chat.completions.create(model=server.model, max_tokens=24, stream=True,
                                                messages=[{"role": "user", "content": questions[1]}])
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
        assert len(pieces) > 1 and "".join(pieces).strip() == expected[1]
        parts = client.chat.completions.create(model=server.model, max_tokens=24, messages=[
            {"role": "user", "content": [{"type": "text", "text": questions[0]}]}])  # OpenAI content parts, text only
        assert parts.choices[0].message.content.strip() == expected[0]
        image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]
        for bad, message in [({"messages": []}, "non-empty list"), ({"model": "nope"}, "unknown model 'nope'"),
                             ({"max_tokens": -1}, "'max_tokens' must be a whole number >= 1"),
                             ({"temperature": -1}, "'temperature' must be a number from 0 to 2"),
                             ({"messages": [{"role": "user", "content": image}]}, "text-only model")]:
            request = {"model": server.model, "messages": [{"role": "user", "content": "x"}], **bad}
            with pytest.raises(openai.BadRequestError, match=message):
                client.chat.completions.create(**request)
        assert [m.id for m in client.models.list().data] == [server.model]
        for bad, message in [({"messages": [{"role": "user", "content": "가" * 100_000}]}, "context is 8,192 tokens"),
                             ({"n": 3}, "'n': 3 is not supported"), ({"max_tokens": 10**9}, "above this server's cap")]:
            request = {"model": server.model, "messages": [{"role": "user", "content": "x"}], **bad}
            with pytest.raises(openai.BadRequestError, match=message):
                client.chat.completions.create(**request)
        raw = urllib.request.Request(f"{server.base_url}/chat/completions", data=b'{"messages": "\xff"}',
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as not_utf8:
            urllib.request.urlopen(raw, timeout=30)
        assert not_utf8.value.code == 400 and b"not UTF-8" in not_utf8.value.read()
        # a mixed load: good and bad requests at once; no 5xx, no good answer lost
        def ask(i):
            body = {"model": server.model, "max_tokens": 24, "messages": [{"role": "user", "content": questions[0]}]}
            if i % 2:
                body["n"] = 2
            try:
                return 200, client.chat.completions.create(**body).choices[0].message.content.strip()
            except openai.APIStatusError as err:
                return err.status_code, ""

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(ask, range(6)))
        assert [code for code, _ in results] == [200, 400] * 3
        assert all(text == expected[0] for code, text in results if code == 200)
        again = client.chat.completions.create(model=server.model, max_tokens=24,
                                               messages=[{"role": "user", "content": questions[0]}])
        assert again.choices[0].message.content.strip() == expected[0]  # still serving
        pid = server.process.pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_request_past_the_time_limit_gets_504_and_defaults_fill_what_a_request_leaves_out():
    """``add_validation`` on a small FastAPI app standing in for an engine: an answer slower than ``timeout`` gets 504
    with a message (and the next request is answered); a field the request leaves out comes from ``defaults`` (the
    merged folder's decoding, for llama.cpp), one it gives is kept."""
    import asyncio

    from fastapi import FastAPI, Request
    from fastapi.testclient import TestClient

    from course_utils.serve_checks import add_validation

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def echo(request: Request):
        body = await request.json()
        await asyncio.sleep(body.get("sleep", 0))
        return body

    add_validation(app, model="m", timeout=0.5, defaults={"max_tokens": 48, "temperature": 0.0})
    client = TestClient(app)
    message = {"messages": [{"role": "user", "content": "x"}]}
    slow = client.post("/v1/chat/completions", json={**message, "sleep": 3})
    assert slow.status_code == 504 and "no answer within 0.5 s (--timeout)" in slow.json()["error"]["message"]
    fast = client.post("/v1/chat/completions", json={**message, "max_tokens": 8})
    assert fast.status_code == 200 and fast.json()["max_tokens"] == 8 and fast.json()["temperature"] == 0.0
    assert client.get("/v1/models").json()["data"][0]["id"] == "m"


def test_llama_cpp_decoding_defaults_come_from_the_merged_folder(merged_smollm2):
    from course_utils.serve import llama_cpp_defaults

    assert llama_cpp_defaults(merged_smollm2, 512) == {"max_tokens": 48, "repeat_penalty": 1.1, "temperature": 0.0}
    assert llama_cpp_defaults(merged_smollm2, 16)["max_tokens"] == 16  # never above the server's cap


def test_08_reads_the_newest_serving_result_with_a_row_per_server(tmp_path):
    import json
    import shutil

    from benchmarks.common import RESULTS
    from course_utils.serve import measured_servers

    assert measured_servers(tmp_path) == ({}, [])
    for name in ("serving_cpu_2026-11-28.json", "serving_cpu_2026-12-02.json"):
        shutil.copy(RESULTS / name, tmp_path / name)
    facts, rows = measured_servers(tmp_path)
    data = json.loads((RESULTS / "serving_cpu_2026-12-02.json").read_text(encoding="utf-8"))
    assert facts["file"] == "serving_cpu_2026-12-02.json" and facts["decision"] == "llama.cpp (F16 GGUF)"
    assert len(rows) == len(data["servers"]) and rows[-1]["같은 답"] == "128/128"
    assert rows[0]["요청/s (동시 16)"] == round(data["servers"]["transformers"]["levels"][-1]["requests_per_s"], 2)


def test_without_llama_cpp_the_default_engine_falls_back_to_transformers(monkeypatch):
    from course_utils import serve

    monkeypatch.setattr(serve, "llama_cpp_missing", lambda: ["llama_cpp"])
    assert serve.default_engine() == ("transformers" if serve.DEFAULT_ENGINE == "llama.cpp" else serve.DEFAULT_ENGINE)
    monkeypatch.setattr(serve, "llama_cpp_missing", lambda: [])
    assert serve.default_engine() == serve.DEFAULT_ENGINE
