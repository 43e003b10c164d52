# Every target but slides and benchmarks calls `python -m course_utils.course <job>`, which also works without make
# (Windows: `python -m course_utils.course test`, see README). One implementation.
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
BIN := .venv/bin
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

# the course notebooks only (solutions live in notebooks/solutions/ and are not rendered)
slides: $(STAMP)
	$(BIN)/jupyter nbconvert --to slides --output-dir outputs/slides notebooks/0*.ipynb
	$(BIN)/jupyter nbconvert --to html --no-prompt --output-dir outputs/slides notebooks/0*.ipynb

benchmarks: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/throughput.py --profile cpu
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/estimator.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/course_runtime.py --profile smoke
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/learning.py --profile cpu
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/serving.py --profile cpu

deploy-check: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/deploy_check.py

clean:
	rm -rf .venv .cache notebooks/outputs
