"""Serve a merged model over an OpenAI-compatible API: ``transformers serve`` plus request validation.

    python -m course_utils.serve outputs/07_merged/cpu --port 8000      # then any OpenAI client, base_url .../v1

This is transformers' own server (``transformers serve``, the ``transformers[serving]`` extra) with two
additions, each for a measured fault of transformers 5.23:
- malformed requests (no messages, an empty prompt, ``max_tokens`` below 1) reach ``generate`` and come
  back as HTTP 500 "Internal Server Error" with no message; here they get HTTP 400 with an OpenAI-style
  error message before any work (an unknown model name already gets 400 from transformers);
- ``GET /v1/models`` answers 500 when the Hugging Face cache folder does not exist yet (a fresh machine):
  the server is started with ``HF_HUB_CACHE`` pointing at an existing folder.
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


def request_problem(path: str, body, model: str | None = None) -> str | None:
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
    return None


def validating(build_server, model: str | None = None):
    """Wrap transformers' ``build_server`` so its app answers malformed requests with HTTP 400."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    def build(*args, **kwargs):
        app = build_server(*args, **kwargs)

        @app.middleware("http")
        async def check_request(request: Request, call_next):
            if request.method == "POST" and request.url.path in ("/v1/chat/completions", "/v1/completions"):
                try:
                    body = json.loads(await request.body() or b"null")
                except ValueError:
                    body = None
                problem = request_problem(request.url.path, body, model)
                if problem:
                    return JSONResponse({"error": {"message": problem, "type": "invalid_request_error"}},
                                        status_code=400)
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
    args = parser.parse_args(argv)
    from transformers.cli import serve as cli
    from transformers.cli.serving import server

    model = str(Path(args.folder))
    server.build_server = validating(server.build_server, model)  # Serve imports it from there when it starts
    cli.Serve(force_model=model, port=args.port, dtype=args.dtype, device=args.device,
              host="127.0.0.1", log_level="warning")


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
