"""Serving the merged model over an OpenAI-compatible API (transformers serve + our request validation)."""
import pytest

from course_utils.serve import request_problem


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


def test_served_model_answers_like_the_model_in_process(merged_smollm2):
    """Start the server, ask through both endpoints (one streaming), compare with in-process greedy answers at the
    same dtype (fp32, --dtype float32), send malformed requests (HTTP 400 with a message, then it still serves),
    stop it: no process left."""
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
        again = client.chat.completions.create(model=server.model, max_tokens=24,
                                               messages=[{"role": "user", "content": questions[0]}])
        assert again.choices[0].message.content.strip() == expected[0]  # still serving
        pid = server.process.pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
