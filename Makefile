# Feature inversion study: the whole pipeline as a file-dependency DAG.
#
#   profile (parameters/*.yaml) --plan--> reports/<P>/plan.json, config/*.json (slices rewritten only on change)
#   lib.steps.fetch    -> data/source.json                            (DIV2K download + checks, or found)
#   01_data.ipynb      -> split.csv, data/images.pt                   (decode + resize once)
#   lib.steps.encode   -> features/<arch>/<layer>.pt                   (one frozen-encoder pass per arch)
#   lib.steps.baselines -> features/<arch>/baselines.pt                (the baselines' feature errors, per arch)
#   02_train.ipynb     -> <arch>/<layer>[/<run>]/decoder.pt, history.csv  (per layer and run: seeds, capacity)
#   03_evaluate.ipynb  -> <arch>/<layer>[/<run>]/metrics.csv, summary.json, samples.npz
#   04_figures.ipynb   -> summary.csv (+ 95% intervals; rows per layer, seed, capacity run), depth_, weights_ and
#                         capacity_comparisons.csv, figures/*.png
#                                                                     (plots and statistics: never retrains)
#   05_report.ipynb    -> report.html -> report.pdf                    (nbconvert, then system Chromium)
#   06_invert.ipynb    -> invert/<folder>/grid.png, metrics.csv        (make invert IMAGES=folder: your own images)
#
# `make help` lists the targets and knobs. This Makefile runs in a checkout (lib/ beside it) or in an installed
# copy's share folder (`pip install .` puts it, bench.mk, notebooks/, parameters/ and requirements.txt under
# <prefix>/share/feature-inversion/, and lib in site-packages; the `feature-inversion` command runs make there).

SHELL := /bin/bash
.DELETE_ON_ERROR:
.SUFFIXES:
.DEFAULT_GOAL := report

# ---- knobs (command line: make report PROFILE=tiny EPOCHS=2 ...) --------------------------------
PROFILE ?= demo
REPORTS ?= $(CURDIR)/reports
# Independent steps (architectures, layers) run in parallel, one job per core (JOBS=1: serially), and
# each job's torch gets its share of the cores: oversubscribed threads make every job slower.
CORES := $(shell nproc 2>/dev/null || echo 2)
JOBS ?= $(CORES)
# JOBS and GPUS are counts: refused here, before anything runs, unless they are plain non-negative integers
not_count = $(or $(if $(filter-out 1,$(words $(1))),x),$(subst 0,,$(subst 1,,$(subst 2,,$(subst 3,,$(subst 4,,$(subst 5,,$(subst 6,,$(subst 7,,$(subst 8,,$(subst 9,,$(1))))))))))))
ifneq ($(or $(call not_count,$(JOBS)),$(filter 0%,$(JOBS))),)
$(error JOBS=$(JOBS): the number of parallel jobs must be a positive integer, e.g. JOBS=2 (JOBS=1: one step at a time))
endif
MAKEFLAGS += -j$(JOBS)
THREADS := $(shell echo $$(( $(CORES) / $(JOBS) > 0 ? $(CORES) / $(JOBS) : 1 )))
# ARCH, LAYERS, EPOCHS, LIMIT, BATCH_SIZE, DECODER, WIDTH, FEEDBACK, MATCH, NORMALISATION, DIV2K_DIR, SEEDS (decoders per layer,
# one seed each), DECODER_PARAMS (every decoder scaled to this many parameters ± 10%): override the profile
# (the plan step validates them); a variable the goal does not take is one error. ARCH may name any timm model
# (its layers are its stages, or its blocks for a ViT), which then runs at the profile's defaults.

# Where lib is: ./lib in a checkout, else the package PYTHON imports (an installed copy). make's own state (deps.mk,
# the VENV=system stamp) goes in .make/ of a checkout, else beside the outputs: the share folder may be read-only.
# PYTHON: the interpreter for VENV=system and make's own helpers; only a command-line PYTHON= counts (an
# environment variable of that name, set for other tools, does not)
ifneq ($(origin PYTHON),command line)
PYTHON := python3
endif
CHECKOUT := $(wildcard lib/__init__.py)
LIB := $(if $(CHECKOUT),lib,$(shell $(PYTHON) -c 'import lib, os; print(os.path.dirname(lib.__file__))' 2>/dev/null))
ifeq ($(LIB),)
$(error no lib/ beside this Makefile and $(PYTHON) cannot import lib: run an installed copy with `feature-inversion`)
endif
STATE := $(if $(CHECKOUT),.make,$(REPORTS)/.make)

# The environment: VENV=.venv (a checkout's default) is built from requirements.txt; VENV=system (Colab, where the
# notebooks ask for it, and an installed copy) runs every step on PYTHON (default python3) and its packages, and
# installs only what requirements.txt lists and they lack (lib/environment.py), once per interpreter and
# requirements.txt: the stamp lives in $(STATE), never in a .venv.
VENV ?= $(if $(CHECKOUT),.venv,system)
ifeq ($(VENV),system)
# one stamp per interpreter (python3.11 and python3.12 share a prefix, not their packages)
PYTHON_PREFIX := $(shell $(PYTHON) -c 'import sys; print(sys.executable + "-" + sys.implementation.cache_tag)' 2>/dev/null)
ifeq ($(PYTHON_PREFIX),)
$(error VENV=system: PYTHON=$(PYTHON) is not a Python interpreter; name one, e.g. PYTHON=/usr/bin/python3)
endif
PY := $(PYTHON)
ENV_STAMP := $(STATE)/system$(subst /,-,$(PYTHON_PREFIX)).installed
else
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.installed
endif
R := $(REPORTS)/$(basename $(notdir $(PROFILE)))
CONFIG := $(R)/config
PLAN := $(R)/plan.mk
STEP := OMP_NUM_THREADS=$(THREADS) $(PY)
# papermill's own CLI, minus ~3 s of start-up per notebook (lib/notebook.py says why).
PAPERMILL_CLI := -m lib.notebook --kernel python3 --log-output --no-progress-bar
PAPERMILL := $(STEP) $(PAPERMILL_CLI)
# The expensive steps (encode, train, evaluate) run through EXPENSIVE. On a machine with GPUs (GPUS=, default: those
# nvidia-smi lists) each takes a GPU of its own (lib/slots.py: a lock file per device, CUDA_VISIBLE_DEVICES), so
# `make -j4 report PROFILE=paper` trains 4 layers at once on 4 GPUs. LAUNCH= instead hands each step to the
# cluster's scheduler, e.g. LAUNCH="srun --gres=gpu:1 --time=60": make's DAG and -j stay the only orchestration,
# and every output is still written to a temporary name and renamed (atomic on a shared filesystem).
GPUS ?= $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
ifneq ($(call not_count,$(GPUS)),)
$(error GPUS=$(GPUS): the number of GPUs to share must be a non-negative integer, e.g. GPUS=4 (GPUS=0: none))
endif
LAUNCH ?=
SLOTS := $(if $(strip $(LAUNCH)),,$(if $(filter-out 0,$(GPUS)),$(PYTHON) -m lib.slots --gpus $(GPUS) --locks $(REPORTS)/.slots --))
EXPENSIVE := $(LAUNCH) $(SLOTS) env OMP_NUM_THREADS=$(THREADS) $(PY)

# The lib sources each step runs (LIB_PLAN, LIB_FETCH, LIB_DATA, LIB_ENCODE, LIB_TRAIN, LIB_EVALUATE,
# LIB_FIGURES, LIB_REPORT, LIB_RENDER, LIB_INVERT), generated from its imports (lib/deps.py, standard library only):
# a change re-runs the steps that run it, nothing else.
BENCH_GOALS := bench-quality bench-ablation bench-offline bench-learned bench-colour bench-speed bench-projection gpu-check bench-photos
DEPS := $(STATE)/deps.mk
$(DEPS): $(LIB)/deps.py $(wildcard $(LIB)/*.py $(LIB)/*/*.py notebooks/*.ipynb)
	@$(PYTHON) -m lib.deps $@
include $(DEPS)

# ---- environment ---------------------------------------------------------------------------------
ifeq ($(VENV),system)
$(ENV_STAMP): requirements.txt
	@mkdir -p $(@D)
	$(PY) -m lib.environment requirements.txt
	@touch $@
else
$(ENV_STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@
endif

venv: $(ENV_STAMP) ## create .venv from requirements.txt (VENV=system: install only what PYTHON lacks)

# Chromium prints the PDF; poppler-utils checks it in the tests. Debian/Ubuntu package names.
# Run as a recipe line (ensure_system_deps), never as a prerequisite of a file: a phony prerequisite would make
# every file above it out of date, and `make -q report` would say a finished study needs work.
SYSTEM_TOOLS := chromium pdftoppm pdfimages
define ensure_system_deps
	@missing=$$(for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || echo $$t; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing chromium poppler-utils (missing: $$missing)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium poppler-utils fonts-dejavu-core >/dev/null; \
	fi
endef
system-deps: ## install Chromium and poppler-utils with apt-get when missing
	$(ensure_system_deps)

# ---- plan: validate the profile and overrides; plan.json (the one resolved settings file) and its slices ----
# under config/ are rewritten only when they change, plan.mk (ARCHS, LAYERS_<arch>) is generated from it
STUDY_GOALS := $(if $(MAKECMDGOALS),$(filter-out help venv system-deps test clean clean-all profiles deps colab $(BENCH_GOALS),$(MAKECMDGOALS)),report)
ifeq ($(strip $(PROFILE)),)
$(error PROFILE is empty: name a profile ($(basename $(notdir $(wildcard parameters/*.yaml)))) or a YAML file, or leave PROFILE out for the demo)
endif
# make invert's folder, checked here: before the plan is made or anything written
ifneq ($(filter invert,$(MAKECMDGOALS)),)
ifeq ($(strip $(IMAGES)),)
$(error make invert needs a folder of your images: make invert IMAGES=path/to/folder [ARCH=... LAYERS=...])
endif
ifneq ($(words $(IMAGES)),1)
$(error IMAGES='$(IMAGES)' has a space, which make cannot pass on: rename the folder or give a link to it)
endif
IMAGES_DIR := $(abspath $(IMAGES))
ifeq ($(wildcard $(IMAGES_DIR)/.),)
$(error IMAGES=$(IMAGES) is not a folder: make invert IMAGES=path/to/folder, a folder of image files)
endif
endif
ifneq ($(STUDY_GOALS),)
# plan.mk is made by the rule below on every call; an empty, oldest-possible one stands in on the first call, so a
# plan that fails (an unknown profile, a bad value) is its own one error rather than make's "No such file"
# beside it. The failing rule removes it again, and the study's folder with it if it held nothing else.
$(shell mkdir -p $(R) 2>/dev/null && { [ -e $(PLAN) ] || touch -d @0 $(PLAN); } 2>/dev/null)
include $(PLAN)
else ifneq ($(MAKEOVERRIDES),)
VARIABLES_OK := $(shell $(PYTHON) -m lib.knobs "$(MAKECMDGOALS)" "$(MAKEOVERRIDES)")
ifneq ($(VARIABLES_OK),)
$(error $(VARIABLES_OK))
endif
endif

$(PLAN): FORCE | $(ENV_STAMP)
	@$(PY) -m lib.config plan --profile $(PROFILE) --root $(R) --overrides "$(MAKEOVERRIDES)" --goals "$(MAKECMDGOALS)" \
	  || { rm -f $@; rmdir $(R) 2>/dev/null; exit 2; }
plan: $(PLAN) ## validate the profile and overrides -> reports/<profile>/plan.json

# ---- run a notebook with papermill: to a temporary file, moved into place on success -------------
# On failure the executed copy is kept as *.failed.ipynb and any stale target is removed.
# $(call papermill,notebook,executed copy,extra parameters[,runner: default $(PAPERMILL)])
define papermill
	@mkdir -p $(dir $(2))
	@echo "papermill $(1) -> $(2)"
	@$(or $(4),$(PAPERMILL)) $(1) $(2:.ipynb=.tmp.ipynb) -r profile $(PROFILE) -r reports_root $(REPORTS) $(3) \
	  || { rm -f $(2); if mv -f $(2:.ipynb=.tmp.ipynb) $(2:.ipynb=.failed.ipynb) 2>/dev/null; \
	       then echo "error: $(1) failed; executed copy with the error: $(2:.ipynb=.failed.ipynb)" >&2; \
	       else echo "error: $(1) failed before papermill wrote an executed copy (its error is above)" >&2; fi; exit 1; }
	@rm -f $(2:.ipynb=.failed.ipynb)
	@mv $(2:.ipynb=.tmp.ipynb) $(2)
endef

# ---- 1. data --------------------------------------------------------------------------------------
# fetch: DIV2K downloaded (resumable, sha256-checked, unzipped atomically) or found; skimage ships its photos.
SOURCE := $(R)/data/source.json
$(SOURCE): $(CONFIG)/data.json $(CONFIG)/study.json $(LIB_FETCH) | $(ENV_STAMP)
	$(PY) -m lib.steps.fetch --root $(R)
fetch: $(SOURCE) ## the source images, downloaded and checked or found

DATA := $(R)/notebooks/01_data.ipynb
$(DATA): notebooks/01_data.ipynb $(SOURCE) $(LIB_DATA) | $(ENV_STAMP)
	$(call papermill,$<,$@)

data: $(DATA) ## split manifest + decoded image store

# ---- 2. encode once per architecture --------------------------------------------------------------
$(R)/features/%/done.json: $(CONFIG)/%/encoder.json $(DATA) $(LIB_ENCODE) | $(ENV_STAMP)
	$(EXPENSIVE) -m lib.steps.encode --root $(R) --arch $*
encode: $(foreach a,$(ARCHS),$(R)/features/$(a)/done.json) ## every planned architecture's features
# the baselines' distance to each test image in every layer's features: evaluation's, a step apart from encode so
# that a change to what only evaluation scores never re-encodes (and so never retrains)
$(R)/features/%/baselines.pt: $(R)/features/%/done.json $(LIB_BASELINES) | $(ENV_STAMP)
	$(EXPENSIVE) -m lib.steps.baselines --root $(R) --arch $*
baselines: $(foreach a,$(ARCHS),$(R)/features/$(a)/baselines.pt) ## the baselines' feature errors, per architecture

# ---- 3-4. train and evaluate each (architecture, layer) run ------------------------------------------
# A layer's main run lives in <arch>/<layer>/; its other runs (plan.mk's RUNS_<arch>_<layer>: seed repeats
# seed<k> with SEEDS=, a capacity-matched decoder params<n> from the profile's capacity_sweep) in <arch>/<layer>/<run>/.
# $(call RUN_RULES,arch,layer,run): run "" is the main one
define RUN_RULES
$(R)/$(1)/$(2)$(if $(3),/$(3))/train.ipynb: notebooks/02_train.ipynb $(CONFIG)/$(1)/$(2)$(if $(3),/$(3)).json $(R)/features/$(1)/done.json $(LIB_TRAIN) | $(ENV_STAMP)
	$$(call papermill,$$<,$$@,-r arch $(1) -r layer $(2)$(if $(3), -r run $(3)),$$(EXPENSIVE) $$(PAPERMILL_CLI))

$(R)/$(1)/$(2)$(if $(3),/$(3))/evaluate.ipynb: notebooks/03_evaluate.ipynb $(R)/$(1)/$(2)$(if $(3),/$(3))/train.ipynb $(R)/features/$(1)/baselines.pt $(CONFIG)/study.json $(LIB_EVALUATE) | $(ENV_STAMP)
	$$(call papermill,$$<,$$@,-r arch $(1) -r layer $(2)$(if $(3), -r run $(3)),$$(EXPENSIVE) $$(PAPERMILL_CLI))
endef
RUNS := $(foreach a,$(ARCHS),$(foreach l,$(LAYERS_$(a)),$(a)/$(l) $(addprefix $(a)/$(l)/,$(RUNS_$(a)_$(l)))))
$(foreach a,$(ARCHS),$(foreach l,$(LAYERS_$(a)),$(eval $(call RUN_RULES,$(a),$(l),)) \
  $(foreach r,$(RUNS_$(a)_$(l)),$(eval $(call RUN_RULES,$(a),$(l),$(r))))))

TRAINED := $(foreach r,$(RUNS),$(R)/$(r)/train.ipynb)
EVALUATED := $(foreach r,$(RUNS),$(R)/$(r)/evaluate.ipynb)
train: $(TRAINED) ## train every planned layer and run (expensive)
evaluate: $(EVALUATED) ## evaluate every planned layer and run

# ---- 5. cross-layer summary, statistics and figures (cheap) ------------------------------------------
FIGURES := $(R)/notebooks/04_figures.ipynb
# config/figures.json: the layers and runs summarised, rewritten only by calls that build the summary (a narrowed
# `make invert LAYERS=...` or `make train ARCH=...` leaves it, and so the figures, alone)
$(FIGURES): notebooks/04_figures.ipynb $(EVALUATED) $(CONFIG)/figures.json $(LIB_FIGURES) | $(ENV_STAMP)
	$(call papermill,$<,$@)

figures: $(FIGURES) ## summary.csv with intervals, depth and learned-vs-random comparisons, the figures

# ---- 6. report: executed notebook -> HTML -> PDF ------------------------------------------------------
# the committed benchmark results (make bench-offline, bench-learned, bench-colour) are read as files when present
OFFLINE := $(REPORTS)/bench/offline
LAYOUT := $(REPORTS)/bench/colour
LEARNED := $(REPORTS)/bench/learned
$(R)/notebooks/05_report.ipynb: notebooks/05_report.ipynb $(FIGURES) $(CONFIG)/study.json $(LIB_REPORT) \
  $(wildcard $(OFFLINE)/table.json $(OFFLINE)/table.png $(LAYOUT)/*.json $(LEARNED)/*.json $(LEARNED)/table.png) | $(ENV_STAMP)
	$(call papermill,$<,$@)

$(R)/report.html: $(R)/notebooks/05_report.ipynb $(LIB_RENDER) | $(ENV_STAMP)
	$(PY) -m lib.render html $< $@

$(R)/report.pdf: $(R)/report.html | $(ENV_STAMP)
	$(ensure_system_deps)
	$(PY) -m lib.render pdf $< $@

report: $(R)/report.html $(R)/report.pdf ## the whole study -> reports/<profile>/report.{html,pdf}

# ---- 7. your own images: make invert IMAGES=dir [ARCH=... LAYERS=...] -> invert/<name>/grid.png, metrics.csv
# Each image in IMAGES through every planned layer's decoder (the layer's main run; a missing one is trained first,
# through the DAG above), scored by the one evaluation (06_invert.ipynb, lib/invert.py). The folder is checked
# before anything trains.
INVERT_DECODERS := $(foreach a,$(ARCHS),$(foreach l,$(LAYERS_$(a)),$(R)/$(a)/$(l)/train.ipynb))
ifneq ($(filter invert,$(MAKECMDGOALS)),)
$(SOURCE) $(INVERT_DECODERS): | invert-images  # nothing is fetched, prepared or trained for a folder that fails
endif

invert-images: | $(ENV_STAMP)
	@$(PY) -m lib.invert $(IMAGES_DIR)

invert: notebooks/06_invert.ipynb $(LIB_INVERT) $(INVERT_DECODERS) | invert-images $(ENV_STAMP) ## your images through every planned layer: IMAGES=folder -> invert/<folder>/grid.png, metrics.csv
	$(call papermill,$<,$(R)/invert/$(notdir $(IMAGES_DIR))/06_invert.ipynb,-r images $(IMAGES_DIR),$(EXPENSIVE) $(PAPERMILL_CLI))

.PHONY: invert invert-images

# ---- benchmarks: bench.mk (bench-quality, bench-ablation, bench-offline, bench-learned, bench-colour, bench-speed, bench-projection, gpu-check)
include bench.mk

# ---- checks ----------------------------------------------------------------------------------------
test: venv system-deps ## unit tests, notebook contract, end-to-end tiny run, DAG checks
	$(PY) -m pytest -q

profiles: | $(ENV_STAMP) ## list the profiles in parameters/
	@$(PY) -m lib.config profiles

clean: ## delete this profile's outputs (reports/<profile>/)
	rm -rf $(R)

clean-all: clean ## also delete the virtual environment (VENV=system: only its stamp)
	$(if $(filter system,$(VENV)),rm -f $(ENV_STAMP),rm -rf $(VENV))

# make colab [REPO=owner/name] [BRANCH=main]: point every notebook's Colab badge and clone cell at a GitHub
# repository (default: the origin remote, when it is on GitHub), so a fork opens its own code in Colab
colab: ## point the notebooks' Colab badges and clone cells at REPO=owner/name [BRANCH=main]
	@$(PYTHON) -m lib.colab $(if $(REPO),--repo $(REPO)) $(if $(BRANCH),--branch $(BRANCH))

deps: $(DEPS) ## print each step's generated lib prerequisites
	@cat $(DEPS)

help: ## this list
	@echo "make [target] [PROFILE=demo|paper|tiny] [ARCH=...] [LAYERS=...] [EPOCHS=n] [LIMIT=n] [BATCH_SIZE=n] [DECODER=resshuffle|simple|attention] [WIDTH=n] [FEEDBACK=k] [MATCH=n] [NORMALISATION=auto|imagenet|native] [SEEDS=k] [DECODER_PARAMS=n] [JOBS=n] [GPUS=n] [LAUNCH=\"srun ...\"] [IMAGES=folder (invert)] [REPORTS=folder] [VENV=.venv|system] [PYTHON=python3]"
	@echo "VENV=system: every step on PYTHON's own packages (Colab's, a conda env's; no .venv), installing only what it lacks."
	@echo "ARCH: a profile's encoder (demo: efficientnet_lite0, efficientnet_lite0_random, resnet34, vgg16, vit_base_patch16_224) or any timm model name."
	@echo "efficientnet_lite0: Google's ImageNet-trained EfficientNet-Lite0, shipped in a PyPI wheel (Apache-2.0): the one trained"
	@echo "  encoder with no download, a stand-in until the study's weights are at hand; efficientnet_lite0_random is its control."
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-14s %s\n", $$1, $$2}'

FORCE:
.PHONY: FORCE venv system-deps plan fetch data encode baselines train evaluate figures report test profiles clean clean-all deps colab help
