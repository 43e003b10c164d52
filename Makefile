# Every target calls `python -m course_utils.course <job>`, which also works without make
# (Windows: `py -3.11 -m course_utils.course test`, see README). One implementation.
# make course       -> set up, then run the notebooks headless with the active profile (outputs/<profile>/)
# make test         -> set up (with the `test` extra), ruff, the notebook check, unit tests, every notebook under nbval
#                      (smoke profile, offline)
# make notebooks    -> execute every lesson notebook on the `cpu` profile and store its outputs (the notebooks are the source)
# make lab          -> JupyterLab on the same environment (saving a notebook writes its paired .py too)
# make tensorboard  -> TensorBoard over outputs/ (every training run writes <run>/tensorboard)
# make slides       -> every notebook as a reveal.js slide deck and clean HTML (no code prompts) in outputs/slides/
# make benchmarks   -> the CPU benchmarks (throughput, estimator accuracy, smoke runtime, learning, serving)
# make deploy-check -> build llama-cpp-python from source and answer with the exported GGUF (once, slow: see README)
PY ?= python3
STAMP := .venv/.installed
COURSE := $(PY) -m course_utils.course
export COURSE_CACHE ?= $(CURDIR)/.cache/course

.PHONY: course test notebooks lab tensorboard slides benchmarks deploy-check clean

$(STAMP): pyproject.toml
	$(COURSE) setup

course:
	$(COURSE) run

test:
	$(COURSE) test

notebooks:
	$(COURSE) notebooks

lab:
	$(COURSE) lab

tensorboard:
	$(COURSE) tensorboard

slides:
	$(COURSE) slides

benchmarks:
	$(COURSE) benchmarks

deploy-check:
	$(COURSE) deploy-check

clean:
	rm -rf .venv .cache notebooks/outputs
