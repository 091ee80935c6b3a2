# ---- benchmarks (print a line, write JSON): lib/bench/, one module each ------------------------------
# Included by the Makefile, whose PY, ENV_STAMP, REPORTS and LIB (the lib sources: ./lib, or an installed copy's) they use;
# none needs a profile's plan.
#
# make bench-quality ARCH=efficientnet_lite0 LAYER=stage1 OUT=q.json [PROFILE=demo] [TRAIN_DIR=dir VAL_DIR=dir TEST_DIR=dir]
#   [WEIGHTS=imagenet|random] [EPOCHS= BATCH_SIZE= DECODER= WIDTH= FEEDBACK= MATCH= NORMALISATION=] [MINUTES=10] [VIEWS=1]
# The layer trained and scored exactly as the profile's study would (lib/bench/quality.py): its settings, its
# encoder, its epochs; the study's knobs override them. MINUTES=m replaces the epochs by a wall-clock budget (not
# deterministic: not what a profile runs). Without TRAIN_DIR/VAL_DIR/TEST_DIR: the demo's split exported as folders.
# TRAIN_ON_TEST_COPIES=k instead of TRAIN_DIR: the in-domain control, trained on k colour-jittered copies of each test
# image (never the originals). VIEWS=k cuts k views of each training photo (the centred square, then closer crops,
# as the study cuts its photos)
BENCH_DATA := $(REPORTS)/bench/skimage
BENCH_OFFLINE := $(REPORTS)/bench/offline
BENCH_LEARNED := $(REPORTS)/bench/learned
TRAIN_DIR ?= $(BENCH_DATA)/train
# the exported folders' validation split goes with their training split; other folders have none unless named
VAL_DIR ?= $(if $(TRAIN_ON_TEST_COPIES),,$(if $(filter $(abspath $(BENCH_DATA)/train),$(abspath $(TRAIN_DIR))),$(BENCH_DATA)/val,$(if $(filter $(abspath $(BENCH_PHOTOS)/train),$(abspath $(TRAIN_DIR))),$(BENCH_PHOTOS)/val)))
TEST_DIR ?= $(BENCH_DATA)/test
# the profile the benchmarks that train take their settings from (a command-line PROFILE=, else demo)
BENCH_PROFILE := $(if $(filter command line,$(origin PROFILE)),$(PROFILE),demo)
# the study's knobs a benchmark passes on as overrides of the profile's settings
# (command line only, as the study reads its knobs: a variable of that name in the environment does not count)
BENCH_SETTINGS = $(foreach knob,EPOCHS BATCH_SIZE DECODER WIDTH FEEDBACK MATCH NORMALISATION,$(if $(filter command line,$(origin $(knob))),--set $(knob)=$($(knob))))
$(BENCH_DATA)/train $(BENCH_DATA)/val $(BENCH_DATA)/test &: parameters/demo.yaml $(LIB)/data.py $(LIB)/bench/folders.py | $(ENV_STAMP)
	$(PY) -m lib.bench.folders --out $(BENCH_DATA)

# make bench-photos: ~250 natural photos the demo never saw, from Debian packages (lib/bench/natural_photos.tsv:
# pinned versions and sha256; apt-get download, once), split by photo -> $(BENCH_PHOTOS)/train, val and test, with
# sources.csv and licences.csv: TRAIN_DIR/VAL_DIR/TEST_DIR for bench-quality on learned features
BENCH_PHOTOS := $(REPORTS)/bench/photos
$(BENCH_PHOTOS)/train $(BENCH_PHOTOS)/val $(BENCH_PHOTOS)/test &: $(LIB)/bench/photos.py $(LIB)/bench/natural_photos.tsv | $(ENV_STAMP)
	$(PY) -m lib.bench.photos --out $(BENCH_PHOTOS)
bench-photos: $(BENCH_PHOTOS)/train $(BENCH_PHOTOS)/val $(BENCH_PHOTOS)/test ## natural photos from Debian packages -> $(BENCH_PHOTOS)/{train,val,test}

# the exported folders bench-quality reads, built first when TRAIN_DIR/VAL_DIR/TEST_DIR name them
QUALITY_INPUTS = $(if $(filter $(abspath $(BENCH_DATA))/%,$(abspath $(if $(TRAIN_ON_TEST_COPIES),,$(TRAIN_DIR)) $(VAL_DIR) $(TEST_DIR))),$(BENCH_DATA)/train $(BENCH_DATA)/val $(BENCH_DATA)/test) \
  $(if $(filter $(abspath $(BENCH_PHOTOS))/%,$(abspath $(TRAIN_DIR) $(VAL_DIR) $(TEST_DIR))),$(BENCH_PHOTOS)/train $(BENCH_PHOTOS)/val $(BENCH_PHOTOS)/test)
bench-quality: $(QUALITY_INPUTS) | $(ENV_STAMP) ## a profile's decoder for one layer on any images -> $(OUT)
	@test -n "$(ARCH)" -a -n "$(LAYER)" -a -n "$(OUT)" || { echo "error: set ARCH=, LAYER= and OUT= (see make help)" >&2; exit 2; }
	$(PY) -m lib.bench.quality --profile $(BENCH_PROFILE) --arch $(ARCH) --layer $(LAYER) --test-dir $(TEST_DIR) \
	  $(if $(TRAIN_ON_TEST_COPIES),--train-on-test-copies $(TRAIN_ON_TEST_COPIES),--train-dir $(TRAIN_DIR)) \
	  $(if $(VAL_DIR),--val-dir $(VAL_DIR)) $(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(MINUTES),--minutes $(MINUTES)) \
	  $(if $(VIEWS),--views $(VIEWS)) $(BENCH_SETTINGS) --out $(OUT)

# make bench-ablation ARCH=efficientnet_lite0 LAYER=stage1 MECHANISM=pointwise OUT=a.json [PROFILE= folders WEIGHTS= knobs]:
# one mechanism of the default decoder (closed_form_start, fixed_paths, standardise, pointwise, x4_step,
# matching_grids) switched off, against the
# decoder as the profile runs it, same images, settings and budget, in one run (lib/bench/ablation.py): both records
# and the paired PSNR difference with its 95% interval over the test photos
bench-ablation: $(QUALITY_INPUTS) | $(ENV_STAMP) ## one decoder mechanism off vs on, one layer -> $(OUT)
	@test -n "$(ARCH)" -a -n "$(LAYER)" -a -n "$(MECHANISM)" -a -n "$(OUT)" || { echo "error: set ARCH=, LAYER=, MECHANISM= and OUT= (see make help)" >&2; exit 2; }
	$(PY) -m lib.bench.ablation --profile $(BENCH_PROFILE) --arch $(ARCH) --layer $(LAYER) --mechanism $(MECHANISM) \
	  --train-dir $(TRAIN_DIR) --test-dir $(TEST_DIR) $(if $(VAL_DIR),--val-dir $(VAL_DIR)) $(if $(WEIGHTS),--weights $(WEIGHTS)) \
	  $(BENCH_SETTINGS) --out $(OUT)

# make bench-offline [PROFILE=demo] [EPOCHS=n] [MINUTES=m] [ONLY="resnet34/layer1 efficientnet_lite0/stage0/imagenet"]:
# the offline targets in one sweep -- bench-quality on the demo's views for the study's 14 layers (random-init
# encoders) and EfficientNet-Lite0's 5 stages (ImageNet and random weights), at the profile's settings, one JSON per
# row (kept while its settings and test images hold: delete one to rerun it), then table.md: decoder vs the baselines
BENCH_SWEEP = --profile $(BENCH_PROFILE) $(BENCH_SETTINGS) $(if $(MINUTES),--minutes $(MINUTES)) $(if $(ONLY),--layers $(ONLY))
bench-offline: $(BENCH_DATA)/train $(BENCH_DATA)/val $(BENCH_DATA)/test | $(ENV_STAMP) ## every layer vs its offline targets -> $(BENCH_OFFLINE)/table.md
	$(PY) -m lib.bench.offline --out-dir $(BENCH_OFFLINE) --train-dir $(BENCH_DATA)/train --val-dir $(BENCH_DATA)/val \
	  --test-dir $(BENCH_DATA)/test $(BENCH_SWEEP)

# make bench-learned [PROFILE=demo] [EPOCHS=n] [MINUTES=m] [ONLY="efficientnet_lite0/stage3/imagenet"]: the
# learned-features targets in one sweep -- bench-quality on the natural photo folders (bench-photos) for
# EfficientNet-Lite0's 5 stages, ImageNet and random weights, at the profile's settings; rows kept as in bench-offline,
# then table.md
bench-learned: $(BENCH_PHOTOS)/train $(BENCH_PHOTOS)/val $(BENCH_PHOTOS)/test | $(ENV_STAMP) ## Lite0's stages, both weights, vs their targets on natural photos -> $(BENCH_LEARNED)/table.md
	$(PY) -m lib.bench.offline --sweep learned --out-dir $(BENCH_LEARNED) --train-dir $(BENCH_PHOTOS)/train \
	  --val-dir $(BENCH_PHOTOS)/val --test-dir $(BENCH_PHOTOS)/test $(BENCH_SWEEP)

# make bench-colour ARCH=resnet34 LAYER=layer4 WEIGHTS=random [COPIES=8] OUT=c.json: how well pooled features
# predict each test image's mean colour (ridge, as the decoder's colour path), without and with colour-jittered
# copies of the training images: a layer whose colour is not recoverable cannot beat the mean-colour baseline
# except through layout, and it also measures how much of the layout the layer's cells tell (R^2, train and test)
# and [INDOMAIN_COPIES=8] the colour readout fitted on recoloured copies of the test images themselves (is the
# colour in the layer at all, or only not learnable from the training photos?)
COPIES ?= 8
bench-colour: $(if $(filter $(BENCH_DATA)/%,$(TRAIN_DIR) $(TEST_DIR)),$(BENCH_DATA)/train $(BENCH_DATA)/test) | $(ENV_STAMP) ## mean colour and layout a layer's features tell -> $(OUT)
	@test -n "$(ARCH)" -a -n "$(LAYER)" -a -n "$(OUT)" || { echo "error: set ARCH=, LAYER= and OUT= (see make help)" >&2; exit 2; }
	$(PY) -m lib.bench.colour --arch $(ARCH) --layer $(LAYER) --train-dir $(TRAIN_DIR) --test-dir $(TEST_DIR) \
	  --weights $(or $(WEIGHTS),imagenet) --copies $(COPIES) $(if $(INDOMAIN_COPIES),--indomain-copies $(INDOMAIN_COPIES)) --out $(OUT)

# make bench-speed OUT=speed.json: pipeline vs naive loop (decode + resize + fp32 encoder every step), 14 layers
bench-speed: | $(ENV_STAMP) ## training throughput against a naive loop, per layer -> $(OUT)
	@test -n "$(OUT)" || { echo "error: set OUT=file.json" >&2; exit 2; }
	$(PY) -m lib.bench.speed --out $(OUT) $(if $(BATCH_SIZE),--batch-size $(BATCH_SIZE)) $(if $(WIDTH),--width $(WIDTH))

# make bench-projection OUT=gpu.json [PROFILE=paper] [TFLOPS="25 50 100"]: FLOPs and memory per layer counted
# from the code at the profile's settings -> minutes at an assumed GPU throughput (a model, not a measurement)
TFLOPS ?= 25 50 100
bench-projection: | $(ENV_STAMP) ## GPU time and memory projection for a profile (default paper) -> $(OUT)
	@test -n "$(OUT)" || { echo "error: set OUT=file.json" >&2; exit 2; }
	$(PY) -m lib.bench.projection --profile $(if $(filter command line,$(origin PROFILE)),$(PROFILE),paper) --tflops $(TFLOPS) --out $(OUT)

# make gpu-check OUT=dir, on a machine with a GPU (no network needed): one paper-profile layer end to end on
# synthetic DIV2K-sized PNGs, bench-speed at the paper's batch and width, and the paper profile projected from it
gpu-check: | $(ENV_STAMP) ## one paper layer on synthetic data + bench-speed + projection -> $(OUT)/gpu_check.json
	@test -n "$(OUT)" || { echo "error: set OUT=dir" >&2; exit 2; }
	$(PY) -m lib.bench.gpu_check --out $(OUT)

.PHONY: bench-quality bench-ablation bench-offline bench-learned bench-colour bench-speed bench-projection gpu-check bench-photos
