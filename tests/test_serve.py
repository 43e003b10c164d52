"""Serving the merged model over an OpenAI-compatible API (transformers serve + our request validation)."""
import pytest

from course_utils.serve import MAX_BODY_BYTES, parse_body, prompt_problem, request_problem


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


def test_served_model_answers_like_the_model_in_process(merged_smollm2):
    """Start the server, ask through both endpoints (one streaming), compare with in-process greedy answers at the
    same dtype (fp32, --dtype float32), send malformed requests (HTTP 400 with a message, then it still serves),
    stop it: no process left."""
    import urllib.error
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    import openai
    import psutil
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from course_utils.inference import generate_answer
    from course_utils.serve import Server

    model = AutoModelForCausalLM.from_pretrained(merged_smollm2, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(merged_smollm2)
    questions = ["한국의 수도는 어디인가요?", "일주일은 며칠인가요?"]
    expected = [generate_answer(model, tok, q, max_new_tokens=24) for q in questions]
    with Server(merged_smollm2, dtype="float32") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="not-needed")
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
        for bad, message in [({"messages": []}, "non-empty list"), ({"model": "nope"}, "unknown model 'nope'"),
                             ({"max_tokens": -1}, "'max_tokens' must be a whole number >= 1")]:
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
