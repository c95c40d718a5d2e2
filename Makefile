# Two commands for a newcomer: `make book` builds the site, `make test` runs every check.
# Each sets up .venv on first use, so a fresh clone needs nothing else but Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Progress bars are for people at a keyboard; the site and nbval get none (timings differ per run).
QUIET := TQDM_DISABLE=1 PYTHONHASHSEED=0

.PHONY: book test unit lab assignments grade lint format bench clean clean-cache

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# The site serves its own MathJax (no CDN: readers may be offline); the browser tests
# inject axe-core. Both come from npm, pinned in package-lock.json.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

MATHJAX := _site_extra/mathjax/tex-chtml.js
$(MATHJAX): $(NODE_STAMP)
	rm -rf _site_extra/mathjax
	mkdir -p _site_extra
	cp -r node_modules/mathjax/es5 _site_extra/mathjax

## book: execute every changed chapter and render the site into _build/html
book: $(STAMP) $(MATHJAX)
	$(QUIET) $(BIN)/jupyter-book build . --warningiserror --keep-going

# JupyterLab opens the chapters (.md) as notebooks by default: jupytext's viewer for
# Markdown and MyST files, set in the environment's own settings overrides.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_SETTINGS): $(STAMP)
	mkdir -p $(dir $@)
	echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}' > $@

## lab: set up .venv (no book build) and open the chapters in JupyterLab
lab: $(STAMP) $(LAB_SETTINGS)
	$(BIN)/jupyter lab chapters

## assignments: the course kit: student notebooks, solutions and autograder zips in _build/assignments
assignments: $(STAMP)
	$(QUIET) $(BIN)/python assignments/build.py

## grade: one table of scores for a folder of submissions, e.g. make grade A=plateau_moons DIR=inbox/
grade: $(STAMP)
	$(BIN)/python assignments/grade.py $(A) $(DIR)

# The study ran Keras 2: tests/test_study_defaults.py reads its optimizers' source from
# the wheels (read as text, never installed).
KERAS2 := $(VENV)/keras2-wheels
$(KERAS2)/.downloaded: $(STAMP)
	$(BIN)/pip download --quiet --no-deps keras==2.2.4 -d $(KERAS2)
	$(BIN)/pip download --quiet --no-deps keras==2.3.1 -d $(KERAS2)
	touch $@

## test: build the book, lint, then lrtools unit and parity tests, the site in a browser
## (tests/site: needs Debian's chromium) and nbval on every chapter as readers download it
test: book lint $(KERAS2)/.downloaded
	$(QUIET) KERAS2_WHEELS=$(KERAS2) $(BIN)/python -m pytest tests _build/html/_sources/chapters \
		--nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

## unit: lrtools tests only (no book build, no browser)
unit: $(STAMP) $(KERAS2)/.downloaded
	KERAS2_WHEELS=$(KERAS2) $(BIN)/python -m pytest tests --ignore=tests/site

LINTED := lrtools tests benchmarks conftest.py _ext assignments

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

format: $(STAMP)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

## bench: timings against the naive approach, each in one process (about ten minutes)
bench: $(STAMP)
	$(BIN)/python benchmarks/keras_fit.py
	$(BIN)/python benchmarks/replicas.py
	$(BIN)/python benchmarks/book.py

## clean: remove the site and the executed notebooks (next `make book` re-runs every chapter)
clean:
	rm -rf _build
