"""Serve a merged model over an OpenAI-compatible API: llama.cpp's server (or transformers serve) behind the course's
request checks.

    python -m course_utils.serve outputs/07_merged/cpu --port 8000      # then any OpenAI client, base_url .../v1
    python -m course_utils.serve outputs/07_merged/cpu --engine transformers --dtype float32

Engines, measured side by side on the same requests by ``benchmarks/serving.py`` (README, benchmark 5):
- ``llama.cpp`` (the default): llama-cpp-python's ``llama_cpp.server`` over the folder's F16 GGUF (08's export,
  made now when missing). It answered the probe questions as the merged model does in fp32 and faster than
  transformers serve; Q8_0 (``--gguf-type q8_0``) answers one request faster but differs more often than 08 allows.
  llama-cpp-python 0.3.36's repeat penalty ignores the prompt's tokens; ``prompt_penalised`` counts them, as
  transformers does. Without llama-cpp-python (its build needs CMake and a C++ compiler) the default falls back to
  transformers and says so.
- ``transformers``: ``transformers serve`` (the ``transformers[serving]`` extra), one request at a time.
- ``transformers-cb``: ``transformers serve --continuous-batching``: fastest with many requests, but transformers 5.23
  drops the repetition penalty there with one log warning, so it answers with another decoding (kept for the
  benchmark).
Whatever the engine, ``serve_checks.add_validation`` answers what would tie the server up or be silently ignored
before any generation: a prompt longer than the model's context, ``max_tokens`` above ``--max-tokens-cap``, a body over
1 MiB, not UTF-8 or not JSON, fields such as ``n: 3`` (400 naming the field, where transformers only logged a line),
what the OpenAI API refuses (``temperature: -1`` was answered with another answer, an ``image_url`` part with an
empty one: now 400 naming the field),
malformed requests (transformers answered a bare 500); a request past ``--timeout`` gets 504, and ``GET /v1/models``
lists the served model (transformers listed none). transformers serve answered 500 on ``/v1/models`` when the Hugging
Face cache folder did not exist yet (a fresh machine): ``Server`` starts it with ``HF_HUB_CACHE`` pointing at an
existing folder. ``Server`` starts the command as a subprocess on a free local port, waits for ``/v1/models`` and
stops it.
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

from .serve_checks import MAX_BODY_BYTES, add_validation

ENGINES = ("llama.cpp", "transformers", "transformers-cb")
DEFAULT_ENGINE = "llama.cpp"  # chosen by benchmarks/serving.py (README, benchmark 5)
GGUF_TYPES = ("f16", "q8_0")
DEFAULT_GGUF_TYPE = "f16"  # benchmark 5: Q8_0 answered faster but differed from the merged model more often than 08 allows
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def validating(build_server, *checks, **named):
    """transformers' ``build_server`` with ``add_validation``'s checks on the app it builds."""
    def build(*args, **kwargs):
        return add_validation(build_server(*args, **kwargs), *checks, **named)

    return build


def model_context(folder: Path) -> int:
    """The merged model's context in tokens (``max_position_embeddings`` of its config)."""
    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    config = config.get("text_config", config)
    return int(config.get("max_position_embeddings") or config.get("n_positions"))


def default_gguf(folder: Path, gguf_type: str = DEFAULT_GGUF_TYPE) -> Path:
    """Where the GGUF of a merged folder lives: 08's ``outputs/08_gguf/<name>/`` beside ``outputs/07_merged/<name>``,
    else ``<folder>-gguf/`` (never inside the merged folder, which a learner uploads as it is)."""
    folder = Path(folder)
    if folder.parent.name == "07_merged":
        return folder.parent.parent / "08_gguf" / folder.name / f"model-{gguf_type}.gguf"
    return folder.with_name(folder.name + "-gguf") / f"model-{gguf_type}.gguf"


def llama_cpp_defaults(folder: Path, max_tokens_cap: int) -> dict:
    """The merged folder's decoding (``generation_config.json``, written by 07) in llama.cpp's request fields:
    llama-cpp-python's server would otherwise sample (temperature 0.8, top_p 0.95) and, without ``max_tokens``,
    write until the context is full."""
    config = json.loads((Path(folder) / "generation_config.json").read_text(encoding="utf-8"))
    defaults = {"max_tokens": min(config.get("max_new_tokens") or max_tokens_cap, max_tokens_cap),
                "repeat_penalty": config.get("repetition_penalty") or 1.0}
    if not config.get("do_sample"):
        defaults["temperature"] = 0.0  # llama.cpp's greedy
    return defaults


def prompt_penalised(llama_class):
    """A ``llama_cpp.Llama`` whose repeat penalty counts the prompt's tokens too, as transformers'
    ``repetition_penalty`` (and llama.cpp's own ``llama-server``) do. llama-cpp-python 0.3.36 feeds its penalty
    sampler only the tokens it generates (``tests/test_serve.py`` reproduces it), so an answer that repeats words of
    the question ("한국의 수도는 ...") is penalised differently from the merged model's own greedy answer."""
    class PromptPenalisedLlama(llama_class):
        def generate(self, tokens, *args, **kwargs):
            self._course_prompt = list(tokens)
            return super().generate(tokens, *args, **kwargs)

        def _init_sampler(self, *args, **kwargs):
            sampler = super()._init_sampler(*args, **kwargs)
            for token in getattr(self, "_course_prompt", ()):
                sampler.accept(token)
            return sampler

    return PromptPenalisedLlama


def serve_llama_cpp(gguf: Path, host: str, port: int, checks: dict) -> None:
    """llama.cpp's OpenAI-compatible server (llama-cpp-python's ``llama_cpp.server`` app) over ``gguf``, with the
    course's checks. It answers one request at a time (a lock around the model); ``interrupt_requests`` is off, or a
    new request would cut a streaming answer short."""
    import llama_cpp
    import torch
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    llama_cpp.Llama = prompt_penalised(llama_cpp.Llama)  # the server's model loader builds llama_cpp.Llama
    context = checks["context"]
    settings = ModelSettings(model=str(gguf), model_alias=checks["model"], n_ctx=context, n_threads=torch.get_num_threads(),
                             n_threads_batch=torch.get_num_threads(), seed=0, verbose=False,
                             last_n_tokens_size=context,  # the repeat penalty sees every token, as transformers'
                             logits_all=False)  # True keeps n_ctx x vocab floats (32 GiB for Gemma-3 at 32,768)
    app = create_app(server_settings=ServerSettings(host=host, port=port, interrupt_requests=False),
                     model_settings=[settings])
    add_validation(app, **checks)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def serve_transformers(folder: Path, host: str, port: int, dtype: str, device: str, checks: dict,
                       continuous_batching: bool = False) -> None:
    """``transformers serve`` over the merged folder, with the course's checks (its ``build_server`` wrapped)."""
    from transformers.cli import serve as cli
    from transformers.cli.serving import server

    server.build_server = validating(server.build_server, **checks)  # Serve imports it from there when it starts
    cb = {"continuous_batching": True, "attn_implementation": "sdpa", "cb_num_blocks": 64,
          "cb_max_batch_tokens": 512} if continuous_batching else {}
    cli.Serve(force_model=str(folder), port=port, dtype=dtype, device=device, host=host, log_level="warning", **cb)


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a merged model folder (07) with its chat template")
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help=f"{DEFAULT_ENGINE} (the default, chosen by benchmark 5 in the README; transformers when "
                        f"llama-cpp-python is not installed) or another")
    parser.add_argument("--gguf", type=Path, default=None, help="llama.cpp: the GGUF file (default: 08's export of "
                        "this folder, of --gguf-type, exported now when missing)")
    parser.add_argument("--gguf-type", choices=GGUF_TYPES, default=DEFAULT_GGUF_TYPE, help="llama.cpp: the export to "
                        "serve (f16, the default: its answers are the merged model's; q8_0 is faster, see benchmark 5)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dtype", default="float32", help="transformers: float32 (as 07 saved it), float16, bfloat16")
    parser.add_argument("--device", default="cpu", help="transformers: cpu, cuda, ...")
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (this machine only, the default) or an "
                        "address other machines can reach: then anyone on that network can use the model")
    parser.add_argument("--max-tokens-cap", type=int, default=512, help="the most new tokens one request may ask for")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a request gets 504")
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    folder = Path(args.folder)
    model, context = str(folder), model_context(folder)
    checks = {"model": model, "tokenizer": AutoTokenizer.from_pretrained(folder), "context": context,
              "max_tokens_cap": args.max_tokens_cap, "timeout": args.timeout}
    engine, gguf = args.engine or default_engine(), None
    if args.engine == "llama.cpp" and (missing := llama_cpp_missing()):
        raise SystemExit(f"--engine llama.cpp needs llama-cpp-python and its server ({', '.join(missing)}"
                         f" missing): `python -m course_utils.course setup` builds it (a C++ compiler and CMake are "
                         f"needed), or serve with --engine transformers")
    if engine != (args.engine or DEFAULT_ENGINE):
        print(f"llama-cpp-python is not installed ({', '.join(llama_cpp_missing())} missing): serving with "
              f"transformers instead (slower: README, benchmark 5; `python -m course_utils.course setup` builds it)",
              flush=True)
    if engine == "llama.cpp":
        gguf = Path(args.gguf or default_gguf(folder, args.gguf_type))
        if not gguf.exists():
            from .deploy import export_gguf

            print(f"{gguf} is missing: exporting {folder} to GGUF {args.gguf_type} (as notebook 08 does)", flush=True)
            export_gguf(folder, gguf.parent, args.gguf_type)
    print(f"serving {model} ({engine}{f', {gguf.name}' if gguf else ''}) on http://{args.host}:{args.port}/v1 · "
          f"context {context:,} tokens · max_tokens cap {args.max_tokens_cap:,} · timeout {args.timeout:g} s · "
          f"bodies up to {MAX_BODY_BYTES:,} bytes", flush=True)
    if args.host not in LOOPBACK:
        print(f"warning: --host {args.host} lets other machines on the network use this model; there is no "
              f"authentication", flush=True)
    if gguf:
        checks["defaults"] = llama_cpp_defaults(folder, args.max_tokens_cap)
        serve_llama_cpp(gguf, args.host, args.port, checks)
    else:
        serve_transformers(folder, args.host, args.port, args.dtype, args.device, checks,
                           continuous_batching=engine == "transformers-cb")


def default_engine() -> str:
    """The engine the command serves with when no ``--engine`` is given: ``DEFAULT_ENGINE``, or transformers where
    llama.cpp's server is not installed (``llama_cpp_missing``)."""
    return "transformers" if DEFAULT_ENGINE == "llama.cpp" and llama_cpp_missing() else DEFAULT_ENGINE


def llama_cpp_missing() -> list[str]:
    """The modules llama.cpp's OpenAI-compatible server needs that are not installed (none: it can serve)."""
    import importlib.util

    return [m for m in ("llama_cpp", "sse_starlette", "starlette_context", "pydantic_settings")
            if importlib.util.find_spec(m) is None]


SERVER_NAMES = {"transformers": "transformers (하나씩)", "transformers-cb": "transformers (연속 배칭)",
                "llama.cpp:q8_0": "llama.cpp (Q8_0 GGUF)", "llama.cpp:f16": "llama.cpp (F16 GGUF)"}


def measured_servers(results_dir) -> tuple[dict, list[dict]]:
    """The newest ``benchmarks/serving.py`` result in ``results_dir`` (its facts: file, date, machine, decision, the
    Q8_0 bar) and one row per server for 08: requests/s at the lowest and highest concurrency, p95 latency at the
    highest, answers the same as the merged model's in-process greedy answers. ({}, []) when there is none."""
    paths = sorted(Path(results_dir).glob("serving_*.json"), key=lambda p: p.stem.rsplit("_", 1)[-1])
    if not paths:
        return {}, []
    data = json.loads(paths[-1].read_text(encoding="utf-8"))
    low, high = data["concurrency"][0], data["concurrency"][-1]
    rows = [{"서버": SERVER_NAMES.get(name, name), f"요청/s (동시 {low})": round(r["levels"][0]["requests_per_s"], 2),
             f"요청/s (동시 {high})": round(r["levels"][-1]["requests_per_s"], 2),
             f"p95 지연 s (동시 {high})": round(r["levels"][-1]["p95_s"], 2),
             "실패": sum(lv["failed"] for lv in r["levels"]),
             "같은 답": f"{r['agreement']['same']}/{r['agreement']['answers']}"} for name, r in data["servers"].items()]
    q8 = data["q8_0_check"]
    facts = {"file": paths[-1].name, "date": data["date"], "machine": data.get("machine_kind"),
             "decision": SERVER_NAMES.get(data["decision"], data["decision"]), "q8_bar": f"{q8['same']}/{q8['questions']}", "high": high}
    return facts, rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``with Server(folder) as server:`` a running model server (``server.base_url``, ``server.model``), started as
    ``python -m course_utils.serve`` on a free local port (``engine`` None: the command's default); stopped on leaving."""

    def __init__(self, folder, engine: str | None = None, dtype: str = "float32", port: int | None = None,
                 timeout: float = 300.0, hf_cache: str | Path | None = None, options: tuple = ()):
        if engine is not None and engine not in ENGINES:
            raise ValueError(f"engine={engine!r}: choose one of {', '.join(ENGINES)}")
        self.folder, self.engine, self.dtype, self.timeout = Path(folder), engine, dtype, timeout
        self.options = [str(o) for o in options]  # more of main()'s flags, e.g. ("--gguf-type", "f16")
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.model = str(self.folder)  # the server is pinned to this model id
        self.hf_cache = Path(hf_cache) if hf_cache else self.folder.parent / ".serve-hf-cache"
        self.process = None

    def __enter__(self):
        self.hf_cache.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_CACHE": str(self.hf_cache), "HF_HUB_OFFLINE": "1"}
        self.log = open(self.folder.parent / f".serve-{self.port}.log", "w", encoding="utf-8")  # noqa: SIM115
        engine = ["--engine", self.engine] if self.engine else []  # none: the command's default (and its fallback)
        self.process = subprocess.Popen([sys.executable, "-m", "course_utils.serve", str(self.folder), *engine,
                                         "--port", str(self.port), "--dtype", self.dtype, *self.options],
                                        stdout=self.log, stderr=subprocess.STDOUT, env=env)
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
