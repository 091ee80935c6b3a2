# Feature inversion study: the whole pipeline as a file-dependency DAG.
#
#   profile (parameters/*.yaml) --plan--> reports/<P>/config/*.json   (rewritten only when settings change)
#   lib.pipeline fetch -> data/source.json                            (DIV2K download + checks, or found)
#   01_data.ipynb      -> split.csv, data/images.pt                   (decode + resize once)
#   lib.pipeline encode-> features/<arch>/<layer>.pt                   (one frozen-encoder pass per arch)
#   02_train.ipynb     -> <arch>/<layer>/decoder.pt, history.csv       (per layer, papermill)
#   03_evaluate.ipynb  -> <arch>/<layer>/metrics.csv, summary.json, reconstructions.png
#   04_figures.ipynb   -> summary.csv (+ 95% intervals), depth_comparisons.csv, figures/*.png
#                                                                     (plots and statistics: never retrains)
#   05_report.ipynb    -> report.html -> report.pdf                    (nbconvert, then system Chromium)
#
# `make help` lists the targets and knobs.

SHELL := /bin/bash
.DELETE_ON_ERROR:
.SUFFIXES:
.DEFAULT_GOAL := report

# ---- knobs (command line: make report PROFILE=tiny EPOCHS=2 ...) --------------------------------
PROFILE ?= demo
REPORTS ?= reports
# Independent steps (architectures, layers) run in parallel, one job per core (JOBS=1: serially), and
# each job's torch gets its share of the cores: oversubscribed threads make every job slower.
CORES := $(shell nproc 2>/dev/null || echo 2)
JOBS ?= $(CORES)
MAKEFLAGS += -j$(JOBS)
THREADS := $(shell echo $$(( $(CORES) / $(JOBS) > 0 ? $(CORES) / $(JOBS) : 1 )))
# ARCH, LAYERS, EPOCHS, LIMIT, BATCH_SIZE, DECODER: override the profile; validated by the plan step.

VENV ?= .venv
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.installed
R := $(REPORTS)/$(basename $(notdir $(PROFILE)))
CONFIG := $(R)/config
PLAN := $(R)/plan.mk
STEP := OMP_NUM_THREADS=$(THREADS) $(PY)
# papermill's own CLI, minus ~3 s of start-up per notebook (lib/notebook.py says why).
PAPERMILL := $(STEP) -m lib.notebook --kernel python3 --log-output --no-progress-bar

# lib sources each step reads: a change re-runs that step and everything after it, nothing before.
LIB_DATA := lib/__init__.py lib/registry.py lib/config.py lib/data.py lib/pipeline.py lib/provenance.py
LIB_ENCODE := $(LIB_DATA) lib/encoders.py
LIB_TRAIN := $(LIB_ENCODE) lib/decoders.py lib/training.py
LIB_EVAL := $(LIB_TRAIN) lib/metrics.py lib/figures.py lib/matching.py
LIB_FIGURES := $(LIB_EVAL) lib/stats.py
LIB_REPORT := $(LIB_FIGURES) lib/report.py

# ---- environment ---------------------------------------------------------------------------------
$(ENV_STAMP): requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(ENV_STAMP) ## create .venv from requirements.txt (torch, timm, jupyter, papermill, ...)

# Chromium prints the PDF; poppler-utils checks it in the tests. Debian/Ubuntu package names.
SYSTEM_TOOLS := chromium pdftoppm pdfimages
system-deps: ## install Chromium and poppler-utils with apt-get when missing
	@missing=$$(for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || echo $$t; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing chromium poppler-utils (missing: $$missing)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium poppler-utils fonts-dejavu-core >/dev/null; \
	fi

# ---- plan: validate the profile and overrides, write settings files only when they change --------
NEEDS_PLAN := $(if $(MAKECMDGOALS),$(filter-out help venv system-deps test clean clean-all profiles bench-quality bench-offline bench-colour bench-speed bench-projection gpu-check,$(MAKECMDGOALS)),report)
ifneq ($(NEEDS_PLAN),)
include $(PLAN)
endif

$(PLAN): FORCE | $(ENV_STAMP)
	@$(PY) -m lib.config plan --profile $(PROFILE) --reports $(REPORTS) --overrides "$(MAKEOVERRIDES)"

# ---- run a notebook with papermill: to a temporary file, moved into place on success -------------
# On failure the executed copy is kept as *.failed.ipynb and any stale target is removed.
# $(call papermill,notebook,executed copy,extra parameters)
define papermill
	@mkdir -p $(dir $(2))
	@echo "papermill $(1) -> $(2)"
	@$(PAPERMILL) $(1) $(2:.ipynb=.tmp.ipynb) -r profile $(PROFILE) -r reports_root $(REPORTS) $(3) \
	  || { mv -f $(2:.ipynb=.tmp.ipynb) $(2:.ipynb=.failed.ipynb) 2>/dev/null; rm -f $(2); \
	       echo "error: $(1) failed; executed copy with the error: $(2:.ipynb=.failed.ipynb)" >&2; exit 1; }
	@rm -f $(2:.ipynb=.failed.ipynb)
	@mv $(2:.ipynb=.tmp.ipynb) $(2)
endef

# ---- 1. data --------------------------------------------------------------------------------------
# fetch: DIV2K downloaded (resumable, sha256-checked, unzipped atomically) or found; skimage ships its photos.
SOURCE := $(R)/data/source.json
$(SOURCE): $(CONFIG)/data.json lib/download.py $(LIB_DATA) | $(ENV_STAMP)
	$(PY) -m lib.pipeline fetch --profile $(PROFILE) --reports $(REPORTS)

DATA := $(R)/notebooks/01_data.ipynb
$(DATA): notebooks/01_data.ipynb $(SOURCE) $(LIB_DATA) lib/figures.py | $(ENV_STAMP)
	$(call papermill,$<,$@)

data: $(DATA) ## split manifest + decoded image store

# ---- 2. encode once per architecture --------------------------------------------------------------
$(R)/features/%/done.json: $(CONFIG)/%/encoder.json $(DATA) $(LIB_ENCODE) | $(ENV_STAMP)
	$(STEP) -m lib.pipeline encode --profile $(PROFILE) --reports $(REPORTS) --arch $*

# ---- 3-4. train and evaluate each (architecture, layer) --------------------------------------------
define LAYER_RULES
$(R)/$(1)/$(2)/train.ipynb: notebooks/02_train.ipynb $(CONFIG)/$(1)/$(2).json $(R)/features/$(1)/done.json $(LIB_TRAIN) | $(ENV_STAMP)
	$$(call papermill,$$<,$$@,-r arch $(1) -r layer $(2))

$(R)/$(1)/$(2)/evaluate.ipynb: notebooks/03_evaluate.ipynb $(R)/$(1)/$(2)/train.ipynb $(CONFIG)/study.json $(LIB_EVAL) | $(ENV_STAMP)
	$$(call papermill,$$<,$$@,-r arch $(1) -r layer $(2))
endef
$(foreach a,$(ARCHS),$(foreach l,$(LAYERS_$(a)),$(eval $(call LAYER_RULES,$(a),$(l)))))

TRAINED := $(foreach a,$(ARCHS),$(foreach l,$(LAYERS_$(a)),$(R)/$(a)/$(l)/train.ipynb))
EVALUATED := $(foreach a,$(ARCHS),$(foreach l,$(LAYERS_$(a)),$(R)/$(a)/$(l)/evaluate.ipynb))
train: $(TRAINED) ## train every planned layer (expensive)
evaluate: $(EVALUATED) ## evaluate every planned layer

# ---- 5. cross-layer figures and summary.csv (cheap) -------------------------------------------------
FIGURES := $(R)/notebooks/04_figures.ipynb
$(FIGURES): notebooks/04_figures.ipynb $(EVALUATED) $(PLAN) $(LIB_FIGURES) | $(ENV_STAMP)
	$(call papermill,$<,$@)

figures: $(FIGURES) ## summary.csv with intervals, depth_comparisons.csv, the cross-layer figures

# ---- 6. report: executed notebook -> HTML -> PDF ------------------------------------------------------
# the committed offline benchmark (make bench-offline) and layout control (make bench-colour) are shown when present
OFFLINE := $(REPORTS)/bench/offline
LAYOUT := $(REPORTS)/bench/colour
$(R)/notebooks/05_report.ipynb: notebooks/05_report.ipynb $(FIGURES) $(CONFIG)/study.json $(LIB_REPORT) \
  $(wildcard $(OFFLINE)/table.json $(OFFLINE)/table.png $(LAYOUT)/*.json) | $(ENV_STAMP)
	$(call papermill,$<,$@)

$(R)/report.html: $(R)/notebooks/05_report.ipynb lib/report.py | $(ENV_STAMP)
	$(PY) -m lib.report html $< $@

$(R)/report.pdf: $(R)/report.html | system-deps
	$(PY) -m lib.report pdf $< $@

report: $(R)/report.html $(R)/report.pdf ## the whole study -> reports/<profile>/report.{html,pdf}

# ---- benchmarks (print a line, write JSON) ---------------------------------------------------------
# make bench-quality ARCH=resnet34 LAYER=layer1 TRAIN_DIR=dir TEST_DIR=dir WEIGHTS=imagenet MINUTES=10 [BATCH_SIZE=8] [WIDTH=256]
#   [COLOUR_COPIES=0] [FEEDBACK=2] [MATCH=300] OUT=q.json
# Without TRAIN_DIR/TEST_DIR: the demo's scikit-image views, split by source photo. TRAIN_ON_TEST_COPIES=k instead of
# TRAIN_DIR: the in-domain control, trained on k colour-jittered copies of each test image (never the originals)
BENCH_DATA := $(REPORTS)/bench/skimage
TRAIN_DIR ?= $(BENCH_DATA)/train
TEST_DIR ?= $(BENCH_DATA)/test
WEIGHTS ?= imagenet
MINUTES ?= 10
$(BENCH_DATA)/train $(BENCH_DATA)/test &: parameters/demo.yaml lib/data.py lib/bench.py | $(ENV_STAMP)
	$(PY) -m lib.bench export-demo --out $(BENCH_DATA)

bench-quality: $(if $(filter $(BENCH_DATA)/%,$(if $(TRAIN_ON_TEST_COPIES),,$(TRAIN_DIR)) $(TEST_DIR)),$(BENCH_DATA)/train $(BENCH_DATA)/test) | $(ENV_STAMP) ## decoder quality for a time budget on any images -> $(OUT)
	@test -n "$(ARCH)" -a -n "$(LAYER)" -a -n "$(OUT)" || { echo "error: set ARCH=, LAYER= and OUT= (see make help)" >&2; exit 2; }
	$(PY) -m lib.bench quality --arch $(ARCH) --layer $(LAYER) --test-dir $(TEST_DIR) \
	  $(if $(TRAIN_ON_TEST_COPIES),--train-on-test-copies $(TRAIN_ON_TEST_COPIES),--train-dir $(TRAIN_DIR)) \
	  --weights $(WEIGHTS) --minutes $(MINUTES) --out $(OUT) $(if $(BATCH_SIZE),--batch-size $(BATCH_SIZE)) $(if $(WIDTH),--width $(WIDTH)) \
	  $(if $(COLOUR_COPIES),--colour-copies $(COLOUR_COPIES)) $(if $(FEEDBACK),--feedback $(FEEDBACK)) $(if $(MATCH),--match $(MATCH))

# make bench-offline [MINUTES=10] [ONLY="resnet34/layer1 vgg16/block2"]: the offline targets in one sweep --
# bench-quality with random-init encoders on the demo's views for every layer (2.5 h on 2 CPU cores), one JSON
# per layer (kept while its settings hold: delete one to rerun it), then table.md: decoder vs both baselines
bench-offline: $(BENCH_DATA)/train $(BENCH_DATA)/test | $(ENV_STAMP) ## every layer vs its offline targets -> $(OFFLINE)/table.md
	$(PY) -m lib.bench offline --out-dir $(OFFLINE) --train-dir $(BENCH_DATA)/train --test-dir $(BENCH_DATA)/test \
	  --minutes $(MINUTES) $(if $(ONLY),--layers $(ONLY))

# make bench-colour ARCH=resnet34 LAYER=layer4 WEIGHTS=random [COPIES=8] OUT=c.json: how well pooled features
# predict each test image's mean colour (ridge, as the decoder's colour path), without and with colour-jittered
# copies of the training images: a layer whose colour is not recoverable cannot beat the mean-colour baseline
# except through layout, and it also measures how much of the layout the layer's cells tell (R^2, train and test)
# and [INDOMAIN_COPIES=8] the colour readout fitted on recoloured copies of the test images themselves (is the
# colour in the layer at all, or only not learnable from the training photos?)
COPIES ?= 8
bench-colour: $(if $(filter $(BENCH_DATA)/%,$(TRAIN_DIR) $(TEST_DIR)),$(BENCH_DATA)/train $(BENCH_DATA)/test) | $(ENV_STAMP) ## mean colour and layout a layer's features tell -> $(OUT)
	@test -n "$(ARCH)" -a -n "$(LAYER)" -a -n "$(OUT)" || { echo "error: set ARCH=, LAYER= and OUT= (see make help)" >&2; exit 2; }
	$(PY) -m lib.bench colour --arch $(ARCH) --layer $(LAYER) --train-dir $(TRAIN_DIR) --test-dir $(TEST_DIR) \
	  --weights $(WEIGHTS) --copies $(COPIES) $(if $(INDOMAIN_COPIES),--indomain-copies $(INDOMAIN_COPIES)) --out $(OUT)

# make bench-speed OUT=speed.json: pipeline vs naive loop (decode + resize + fp32 encoder every step), 14 layers
bench-speed: | $(ENV_STAMP) ## training throughput against a naive loop, per layer -> $(OUT)
	@test -n "$(OUT)" || { echo "error: set OUT=file.json" >&2; exit 2; }
	$(PY) -m lib.bench_speed --out $(OUT) $(if $(BATCH_SIZE),--batch-size $(BATCH_SIZE)) $(if $(WIDTH),--width $(WIDTH))

# make bench-projection OUT=gpu.json [PROFILE=paper] [TFLOPS="25 50 100"]: FLOPs and memory per layer counted
# from the code at the profile's settings -> minutes at an assumed GPU throughput (a model, not a measurement)
TFLOPS ?= 25 50 100
bench-projection: | $(ENV_STAMP) ## GPU time and memory projection for a profile (default paper) -> $(OUT)
	@test -n "$(OUT)" || { echo "error: set OUT=file.json" >&2; exit 2; }
	$(PY) -m lib.projection --profile $(if $(filter command line,$(origin PROFILE)),$(PROFILE),paper) --tflops $(TFLOPS) --out $(OUT)

# make gpu-check OUT=dir, on a machine with a GPU (no network needed): one paper-profile layer end to end on
# synthetic DIV2K-sized PNGs, bench-speed at the paper's batch and width, and the paper profile projected from it
gpu-check: | $(ENV_STAMP) ## one paper layer on synthetic data + bench-speed + projection -> $(OUT)/gpu_check.json
	@test -n "$(OUT)" || { echo "error: set OUT=dir" >&2; exit 2; }
	$(PY) -m lib.gpu_check --out $(OUT)

# ---- checks ----------------------------------------------------------------------------------------
test: venv system-deps ## unit tests, notebook contract, end-to-end tiny run, DAG checks
	$(PY) -m pytest -q

profiles: | $(ENV_STAMP) ## list the profiles in parameters/
	@$(PY) -m lib.config profiles

clean: ## delete this profile's outputs (reports/<profile>/)
	rm -rf $(R)

clean-all: clean ## also delete the virtual environment
	rm -rf $(VENV)

help: ## this list
	@echo "make [target] [PROFILE=demo|paper|tiny] [ARCH=...] [LAYERS=...] [EPOCHS=n] [LIMIT=n] [BATCH_SIZE=n] [DECODER=resshuffle|simple|attention] [WIDTH=n] [JOBS=n]"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'

FORCE:
.PHONY: FORCE venv system-deps data train evaluate figures report bench-quality bench-offline bench-colour bench-speed bench-projection gpu-check test profiles clean clean-all help
