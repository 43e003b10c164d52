"""The course's checks in front of an OpenAI-compatible server: a request that is malformed, too large or asks for
what the server cannot honour gets a 4xx with an OpenAI-style message before any generation, and a request that runs
past a time limit gets 504. ``add_validation`` puts them on any FastAPI app (transformers serve's or llama.cpp's), so
whichever engine ``course_utils.serve`` starts answers bad requests the same way."""
from __future__ import annotations

import json

MAX_BODY_BYTES = 1 << 20
# fields transformers 5.23 ignores (chat_completion / completion UNUSED_*_FIELDS), with the value that asks nothing
# of the server: any other value is refused instead of silently dropped
UNHONOURED = {"n": (None, 1), "best_of": (None, 1), "logprobs": (None, False, 0), "top_logprobs": (None, 0),
              "echo": (None, False), "presence_penalty": (None, 0, 0.0), "response_format": (None, {"type": "text"}),
              "functions": (None, []), "function_call": (None, "none"), "tool_choice": (None, "none"),
              "prediction": (None,), "audio": (None,), "modalities": (None, ["text"]), "web_search_options": (None,),
              "reasoning_effort": (None,)}


# sampling fields and the ranges the OpenAI API accepts (a value outside is a 400 there, not a different answer)
RANGES = {"temperature": (0, 2), "top_p": (0, 1), "frequency_penalty": (-2, 2)}


def content_problem(content, where: str) -> str | None:
    """Why a message's content cannot be read by a text-only model (None when it is text): a string, or a list of
    OpenAI content parts that are all ``{"type": "text", "text": ...}``."""
    if isinstance(content, str):
        return None
    if not isinstance(content, list) or not content:
        return f"'{where}' must be a string or a non-empty list of text parts"
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            return (f"'{where}[{j}]' is a part of type {kind!r}: this server serves a text-only model, send "
                    f"{{\"type\": \"text\", \"text\": ...}} parts or a string")
    return None


def as_text(body: dict) -> dict:
    """The request with every message's text parts joined into one string (what the model's chat template reads)."""
    messages = [{**m, "content": "".join(part["text"] for part in m["content"])} if isinstance(m["content"], list)
                else m for m in body["messages"]]
    return {**body, "messages": messages}


def parse_body(raw: bytes):
    """(body, problem): the request body as JSON, or why it is not (not UTF-8, not JSON, too large)."""
    if len(raw) > MAX_BODY_BYTES:
        return None, f"the request body has {len(raw):,} bytes; this server accepts at most {MAX_BODY_BYTES:,}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, f"the request body is not UTF-8 text (byte {err.start}): send JSON encoded as UTF-8"
    try:
        return json.loads(text or "null"), None
    except ValueError as err:
        return None, f"the request body is not valid JSON: {err}"


def request_problem(path: str, body, model: str | None = None, max_tokens_cap: int | None = None) -> str | None:
    """Why an OpenAI-style request body is malformed for a server of ``model`` (None when it is fine)."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    if model is not None and body.get("model") not in (None, model):
        return f"unknown model {body.get('model')!r}: this server serves {model!r}"
    if path.endswith("/chat/completions"):
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty list of {\"role\": ..., \"content\": ...} objects"
        if any(not isinstance(m, dict) or "role" not in m or "content" not in m for m in messages):
            return "every message needs a 'role' and a 'content'"
        for i, message in enumerate(messages):
            if problem := content_problem(message["content"], f"messages[{i}].content"):
                return problem
    if path.endswith("/v1/completions"):
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return "'prompt' must be a non-empty string"
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return f"'{key}' must be a whole number >= 1, got {value!r}"
        if value is not None and max_tokens_cap is not None and value > max_tokens_cap:
            return f"'{key}' is {value:,}, above this server's cap of {max_tokens_cap:,} new tokens (--max-tokens-cap)"
    for key, (low, high) in RANGES.items():  # what the OpenAI API refuses outside these ranges
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high):
            return f"'{key}' must be a number from {low:g} to {high:g}, got {value!r}"
    for key, fine in UNHONOURED.items():
        if key in body and body[key] not in fine:
            return f"'{key}': {body[key]!r} is not supported by this server (it answers one greedy or sampled " \
                   f"completion per request); leave '{key}' out"
    return None


def prompt_problem(path: str, body: dict, tokenizer, context: int) -> str | None:
    """Why the request's prompt does not fit the model's ``context`` (None when it fits), counted in tokens with the
    model's own tokenizer and chat template, before any generation."""
    if path.endswith("/chat/completions"):
        messages = [{"role": m["role"], "content": m["content"]} for m in as_text(body)["messages"]]
        try:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        except Exception as err:  # the course's template accepts one user question (jinja raises otherwise)
            return f"the messages do not fit this model's chat template: {err}"
        count = len(ids["input_ids"] if hasattr(ids, "keys") else ids)  # BatchEncoding, or a plain id list
    elif path.endswith("/v1/completions"):
        count = len(tokenizer(body["prompt"]).input_ids)
    else:
        return None
    new = next((body[k] for k in ("max_tokens", "max_completion_tokens") if body.get(k)), 0)
    if count + new > context:
        return (f"the prompt has {count:,} tokens" + (f" and asks for {new:,} new ones" if new else "") +
                f"; this model's context is {context:,} tokens: shorten the prompt")
    return None


def _error(message: str, status: int):
    from fastapi.responses import JSONResponse

    kind = "invalid_request_error" if status < 500 else "timeout"
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def add_validation(app, model: str | None = None, tokenizer=None, context: int | None = None,
                   max_tokens_cap: int | None = None, timeout: float | None = None, defaults: dict | None = None):
    """Put the course's checks in front of an OpenAI-compatible FastAPI ``app`` (transformers serve's or llama.cpp's):
    malformed or oversized requests get 4xx before any work, a request past ``timeout`` seconds gets 504, ``GET
    /v1/models`` lists ``model``, and fields a request leaves out are filled from ``defaults`` (the merged folder's
    decoding, so every engine answers with the same settings)."""
    import asyncio

    from fastapi import Request
    from fastapi.responses import JSONResponse

    @app.middleware("http")
    async def check_request(request: Request, call_next):
        if request.method == "GET" and request.url.path == "/v1/models" and model is not None:
            return JSONResponse({"object": "list", "data": [{"id": model, "object": "model", "created": 0,
                                                             "owned_by": "lora-8gb-course"}]})
        if request.method == "POST" and request.url.path in ("/v1/chat/completions", "/v1/completions"):
            body, problem = parse_body(await request.body())
            problem = problem or request_problem(request.url.path, body, model, max_tokens_cap)
            if not problem and tokenizer is not None and context:
                problem = prompt_problem(request.url.path, body, tokenizer, context)
            if problem:
                return _error(problem, 413 if "accepts at most" in problem else 400)
            forwarded = as_text(body) if request.url.path.endswith("/chat/completions") else body
            forwarded = {**(defaults or {}), **forwarded}
            if forwarded != body:
                request._body = json.dumps(forwarded).encode("utf-8")  # starlette replays this body
            try:
                return await asyncio.wait_for(call_next(request), timeout)
            except asyncio.TimeoutError:
                return _error(f"no answer within {timeout:g} s (--timeout); ask for fewer max_tokens", 504)
        return await call_next(request)

    return app
