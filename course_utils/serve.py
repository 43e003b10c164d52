"""Serve a merged model over an OpenAI-compatible API: ``transformers serve`` plus request validation.

    python -m course_utils.serve outputs/07_merged/cpu --port 8000      # then any OpenAI client, base_url .../v1

This is transformers' own server (``transformers serve``, the ``transformers[serving]`` extra) with additions,
each for a measured fault of transformers 5.23:
- malformed requests (no messages, an empty prompt, ``max_tokens`` below 1) reach ``generate`` and come
  back as HTTP 500 "Internal Server Error" with no message; here they get HTTP 400 with an OpenAI-style
  error message before any work (an unknown model name already gets 400 from transformers);
- one request could tie the server up for everyone: a 100,000-character message (far beyond the context) was
  accepted and kept the process at 100 % CPU for over 10 minutes. Here a prompt longer than the model's context,
  ``max_tokens`` above the server's cap (``--max-tokens-cap``, printed at start) and a body over 1 MiB get 400 or
  413 before any generation, and a request that runs past ``--timeout`` seconds gets 504;
- ``n: 3`` and other fields transformers cannot honour were dropped with only a log line; here they get 400
  naming the field. A body that is not UTF-8 or not JSON gets a message that says so;
- ``GET /v1/models`` answered an empty list while a model was served; here it lists the served model. It answered
  500 when the Hugging Face cache folder did not exist yet (a fresh machine): the server is started with
  ``HF_HUB_CACHE`` pointing at an existing folder.
``Server`` starts it as a subprocess on a free local port, waits for ``/v1/models`` and stops it.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MAX_BODY_BYTES = 1 << 20
# fields transformers 5.23 ignores (chat_completion / completion UNUSED_*_FIELDS), with the value that asks nothing
# of the server: any other value is refused instead of silently dropped
UNHONOURED = {"n": (None, 1), "best_of": (None, 1), "logprobs": (None, False, 0), "top_logprobs": (None, 0),
              "echo": (None, False), "presence_penalty": (None, 0, 0.0), "response_format": (None, {"type": "text"}),
              "functions": (None, []), "function_call": (None, "none"), "tool_choice": (None, "none"),
              "prediction": (None,), "audio": (None,), "modalities": (None, ["text"]), "web_search_options": (None,),
              "reasoning_effort": (None,)}


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
    for key, fine in UNHONOURED.items():
        if key in body and body[key] not in fine:
            return f"'{key}': {body[key]!r} is not supported by this server (it answers one greedy or sampled " \
                   f"completion per request); leave '{key}' out"
    return None


def prompt_problem(path: str, body: dict, tokenizer, context: int) -> str | None:
    """Why the request's prompt does not fit the model's ``context`` (None when it fits), counted in tokens with the
    model's own tokenizer and chat template, before any generation."""
    if path.endswith("/chat/completions"):
        messages = [{"role": m["role"], "content": m["content"]} for m in body["messages"]]
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


def validating(build_server, model: str | None = None, tokenizer=None, context: int | None = None,
               max_tokens_cap: int | None = None, timeout: float | None = None):
    """Wrap transformers' ``build_server``: malformed or oversized requests get 4xx before any work, a request past
    ``timeout`` seconds gets 504, and ``GET /v1/models`` lists ``model``."""
    import asyncio

    from fastapi import Request
    from fastapi.responses import JSONResponse

    def build(*args, **kwargs):
        app = build_server(*args, **kwargs)

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
                try:
                    return await asyncio.wait_for(call_next(request), timeout)
                except asyncio.TimeoutError:
                    return _error(f"no answer within {timeout:g} s (--timeout); ask for fewer max_tokens", 504)
            return await call_next(request)

        return app

    return build


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a merged model folder (07) with its chat template")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dtype", default="float32", help="float32 (as notebook 07 saved it), float16, bfloat16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (this machine only, the default) or an "
                        "address other machines can reach: then anyone on that network can use the model")
    parser.add_argument("--max-tokens-cap", type=int, default=512, help="the most new tokens one request may ask for")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a request gets 504")
    args = parser.parse_args(argv)
    from transformers import AutoConfig, AutoTokenizer
    from transformers.cli import serve as cli
    from transformers.cli.serving import server

    model = str(Path(args.folder))
    config = AutoConfig.from_pretrained(model)
    context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    print(f"serving {model} on http://{args.host}:{args.port}/v1 · context {context:,} tokens · max_tokens cap "
          f"{args.max_tokens_cap:,} · timeout {args.timeout:g} s · bodies up to {MAX_BODY_BYTES:,} bytes", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: --host {args.host} lets other machines on the network use this model; there is no "
              f"authentication", flush=True)
    server.build_server = validating(server.build_server, model, AutoTokenizer.from_pretrained(model), context,
                                     args.max_tokens_cap, args.timeout)  # Serve imports it from there when it starts
    cli.Serve(force_model=model, port=args.port, dtype=args.dtype, device=args.device,
              host=args.host, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``with Server(folder) as server:`` a running model server (``server.base_url``, ``server.model``)."""

    def __init__(self, folder, dtype: str = "float32", port: int | None = None, timeout: float = 300.0,
                 hf_cache: str | Path | None = None):
        self.folder, self.dtype, self.timeout = Path(folder), dtype, timeout
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.model = str(self.folder)  # the server is pinned to this model id
        self.hf_cache = Path(hf_cache) if hf_cache else self.folder.parent / ".serve-hf-cache"
        self.process = None

    def __enter__(self):
        self.hf_cache.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_CACHE": str(self.hf_cache), "HF_HUB_OFFLINE": "1"}
        self.log = open(self.folder.parent / f".serve-{self.port}.log", "w", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen([sys.executable, "-m", "course_utils.serve", str(self.folder), "--port",
                                         str(self.port), "--dtype", self.dtype], stdout=self.log,
                                        stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + self.timeout
        while True:
            if self.process.poll() is not None:
                self.log.close()
                log = Path(self.log.name).read_text(encoding="utf-8")[-3000:]
                raise RuntimeError(f"the model server exited with code {self.process.returncode}:\n{log}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            if time.time() > deadline:
                self.__exit__(None, None, None)
                raise TimeoutError(f"the model server did not answer /v1/models within {self.timeout:.0f} s")
            time.sleep(0.5)

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.log.closed:
            self.log.close()
        return False


if __name__ == "__main__":
    main()
