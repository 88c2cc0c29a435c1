# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed here, into .venv (VENV=...), on a fresh machine.

# Python 3.11, 3.12 and 3.13. PYTHON=/path/to/python3.x picks one; otherwise the first of
# python3.11, python3.12, python3.13, python3 on PATH that runs and is one of them. Oldest
# first: 3.11 and 3.12 get NumPy 1.26, the measured setup that the CuPy-with-cuDNN GPU extra
# needs (see README.rst "Installing"); a name that does not run (a pyenv shim of a version
# that is not active) is skipped. VENV=DIR picks the virtual environment (one per Python,
# e.g. VENV=.venv313).
SUPPORTED_PYTHONS := 3.11, 3.12 or 3.13
PY_SUPPORTED := import sys; sys.exit(sys.version_info[:2] not in [(3, 11), (3, 12), (3, 13)])
ifndef PYTHON
PYTHON := $(shell for p in python3.11 python3.12 python3.13 python3; do \
    command -v $$p >/dev/null 2>&1 && $$p -c '$(PY_SUPPORTED)' >/dev/null 2>&1 && \
    { command -v $$p; break; }; done)
endif
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# onnx: the ONNX export and the ONNX Runtime backend (and their tests); dist: ChainerMN
# over MPI (mpi4py, and OpenMPI itself: see install-mpi)
EXTRAS ?= test,onnx,dist

# The demo: scripts 00-09 on a synthetic set, with the CPU-sized presets.
DEMO_DATA := data/kuzushiji-recognition-synthetic
DEMO_SPLIT := $(DEMO_DATA)-gsplit
DEMO_CROPS := $(DEMO_DATA)-crops
DEMO_OUT := results/demo
DEMO_TRAIN_PAGES ?= 240
DEMO_TEST_PAGES ?= 20
DEMO_PAGE_HEIGHT ?= 1500
DEMO_SEED ?= 0
# The two trainings run side by side (make -j2), one core each.
DEMO_ENV := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
DEMO_FLAGS := --data-dir $(DEMO_DATA) --split-dir $(DEMO_SPLIT)
DET := $(DEMO_OUT)/detector/model_final.npz
CLF := $(DEMO_OUT)/classifier/model_final.npz
FT := $(DEMO_OUT)/classifier-finetune/model_final.npz
SUB_BEFORE := $(DEMO_OUT)/submission-before-finetune/submission.csv
SUB := $(DEMO_OUT)/submission/submission.csv
PSEUDO := $(DEMO_OUT)/pseudo-labels/pseudo_labels.json
# The final models as one folder for `kr recognize`, and the test pages read with it.
MODEL_DIR := $(DEMO_OUT)/model
READING_DIR := $(DEMO_OUT)/reading
HAVE_ORT = $$($(VPY) -c 'import onnxruntime' 2>/dev/null && echo yes)
# Scripts 05 and 07 run the models with ONNX Runtime when the onnx extra is installed (the
# default): the same models and outputs as with Chainer, in less time.
ORT_BACKEND = $$(test -n "$(HAVE_ORT)" && echo --backend onnxruntime)
# The demo's classifier, which saw each character in six hands for a few minutes, is right
# more often averaged over crops of five margins (scripts 05 and 07, kr recognize).
CLASSIFY_TTA := --classify-tta

# The brush fonts the synthetic pages are written with (kr/synthetic/fonts.py): Debian's
# public-domain packages, installed when this runs as root with apt; otherwise a notice, and
# the generator falls back to the bundled IPAexGothic (it says so too).
BRUSH_FONT_PACKAGES := fonts-kouzan-mouhitsu fonts-aoyagi-soseki fonts-aoyagi-kouzan-t
BRUSH_FONT_FILE := /usr/share/fonts/truetype/kouzan-mouhitsu/KouzanBrushFontSousyo.ttf

.PHONY: install install-mpi install-fonts check-python test demo demo-steps demo-report clean-demo

install: $(STAMP) install-fonts
	@$(MAKE) --no-print-directory check-python

install-fonts:
	@test -f $(BRUSH_FONT_FILE) || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	        echo "installing the brush fonts of the synthetic pages ($(BRUSH_FONT_PACKAGES))"; \
	        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	            $(BRUSH_FONT_PACKAGES) >/dev/null; } || echo "could not install" \
	            "$(BRUSH_FONT_PACKAGES): the synthetic pages fall back to IPAexGothic" >&2; \
	    else \
	        echo "notice: the synthetic pages look more like kuzushiji with the brush fonts" \
	            "$(BRUSH_FONT_PACKAGES) (Debian/Ubuntu: sudo apt-get install" \
	            "$(BRUSH_FONT_PACKAGES)); without them they use the bundled IPAexGothic" >&2; \
	    fi; }

# The chosen interpreter is a supported Python, and an existing $(VENV) was made with the
# same minor version (a .venv of 3.11 is not reused for PYTHON=python3.13).
check-python:
	@test -n "$(PYTHON)" || { echo "kr needs Python $(SUPPORTED_PYTHONS): none of python3.11," \
	    "python3.12, python3.13, python3 on PATH is one of them; install one, or pass" \
	    "PYTHON=/path/to/python3.x" >&2; exit 1; }
	@$(PYTHON) -c '$(PY_SUPPORTED)' 2>/dev/null || { echo "PYTHON=$(PYTHON): kr needs Python" \
	    "$(SUPPORTED_PYTHONS), this is: $$($(PYTHON) --version 2>&1 | head -1)" >&2; exit 1; }
	@test ! -x $(VPY) || test "$$($(VPY) -c 'import sys; print(sys.version_info[:2])')" = \
	    "$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])')" || { echo "VENV=$(VENV)" \
	    "holds $$($(VPY) --version), PYTHON=$(PYTHON) is $$($(PYTHON) --version): pass" \
	    "another VENV=... (e.g. VENV=.venv$$($(PYTHON) -c 'import sys; print("%d%d" % sys.version_info[:2])'))" \
	    "or remove $(VENV)" >&2; exit 1; }

# Chainer 7.8.1 ships only an sdist that builds with setuptools<70 and without build
# isolation; everything else comes as wheels.
$(STAMP): setup.py
	@$(MAKE) --no-print-directory check-python
	@case ",$(EXTRAS)," in *,dist,*) $(MAKE) --no-print-directory install-mpi ;; esac
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet "setuptools<70" wheel
	$(VPY) -m pip install --quiet --no-build-isolation -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The dist extra needs an MPI library and mpiexec: OpenMPI from Debian's packages when this
# runs as root with apt, else a message that says what to install.
install-mpi:
	@command -v mpiexec >/dev/null 2>&1 || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	        echo "installing OpenMPI (openmpi-bin libopenmpi-dev) for the dist extra"; \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	            openmpi-bin libopenmpi-dev >/dev/null; \
	    else \
	        echo "the dist extra needs MPI: install OpenMPI (Debian/Ubuntu: sudo apt-get install" \
	            "openmpi-bin libopenmpi-dev), or leave dist out of EXTRAS" >&2; exit 1; \
	    fi; }

test: install
	$(VPY) -m pytest tests

demo: install
	@date +%s > .demo-start
	$(MAKE) --no-print-directory -j2 demo-steps
	@$(MAKE) --no-print-directory demo-report

demo-steps: $(SUB) $(DEMO_OUT)/train_page.png $(DEMO_OUT)/test_page_before.png \
            $(DEMO_OUT)/test_page.png $(READING_DIR)/.complete

$(DEMO_DATA)/train.csv:
	$(VPY) scripts/00_make_synthetic_dataset.py --out $(DEMO_DATA) --overwrite \
	    --train-pages $(DEMO_TRAIN_PAGES) --test-pages $(DEMO_TEST_PAGES) \
	    --page-height $(DEMO_PAGE_HEIGHT) --seed $(DEMO_SEED)

$(DEMO_SPLIT)/train-0.csv: $(DEMO_DATA)/train.csv
	$(VPY) scripts/01_split_train_val.py $(DEMO_FLAGS)

$(DEMO_CROPS)/trainval.json: $(DEMO_SPLIT)/train-0.csv
	$(VPY) scripts/02_crop_characters.py $(DEMO_FLAGS) --out $(DEMO_CROPS) --overwrite

$(DET): $(DEMO_SPLIT)/train-0.csv
	$(DEMO_ENV) $(VPY) scripts/03_train_detector.py $(DEMO_FLAGS) --preset demo --full-data \
	    --seed $(DEMO_SEED) --out $(DEMO_OUT)/detector

$(CLF): $(DEMO_CROPS)/trainval.json
	$(DEMO_ENV) $(VPY) scripts/04_train_classifier.py $(DEMO_FLAGS) --crop-dir $(DEMO_CROPS) \
	    --preset demo --full-data --seed $(DEMO_SEED) --out $(DEMO_OUT)/classifier

$(SUB_BEFORE): $(DET) $(CLF)
	$(VPY) scripts/07_make_submission.py $(DET) $(CLF) --data-dir $(DEMO_DATA) \
	    --out $(dir $@) $(ORT_BACKEND) $(CLASSIFY_TTA)

# Pseudo labels reuse the first submission's detections (same detector).
$(PSEUDO): $(SUB_BEFORE)
	$(VPY) scripts/05_make_pseudo_labels.py $(DET) $(CLF) --data-dir $(DEMO_DATA) \
	    --out $(dir $@) --restart --detections $(dir $(SUB_BEFORE))detection.csv $(ORT_BACKEND) \
	    $(CLASSIFY_TTA)

$(FT): $(PSEUDO)
	$(VPY) scripts/06_finetune_classifier.py $(CLF) $(DEMO_FLAGS) \
	    --crop-dir $(DEMO_CROPS) --pseudo-labels-dir $(dir $(PSEUDO)) --preset demo \
	    --seed $(DEMO_SEED) --out $(dir $@)

# The detector is the same: the second submission reuses the first one's detections.
$(SUB): $(FT) $(SUB_BEFORE)
	$(VPY) scripts/07_make_submission.py $(DET) $(FT) --data-dir $(DEMO_DATA) --out $(dir $@) \
	    --detections $(dir $(SUB_BEFORE))detection.csv $(ORT_BACKEND) $(CLASSIFY_TTA)
	$(VPY) scripts/08_evaluate.py $(SUB) $(DEMO_DATA)/test_labels.csv \
	    --pages-out $(DEMO_OUT)/submission/pages.csv > $(DEMO_OUT)/metrics.json

$(DEMO_OUT)/train_page.png: $(DEMO_DATA)/train.csv
	$(VPY) scripts/09_visualize.py --data-dir $(DEMO_DATA) --out $@ \
	    --image-id $$(sed -n 2p $(DEMO_DATA)/train.csv | cut -d, -f1)

$(DEMO_OUT)/test_page_before.png: $(SUB_BEFORE)
	$(VPY) scripts/09_visualize.py --data-dir $(DEMO_DATA) --out $@ --submission $< \
	    --image-id $$(sed -n 2p $(DEMO_DATA)/sample_submission.csv | cut -d, -f1)

$(DEMO_OUT)/test_page.png: $(SUB)
	$(VPY) scripts/09_visualize.py --data-dir $(DEMO_DATA) --out $@ --submission $< \
	    --image-id $$(sed -n 2p $(DEMO_DATA)/sample_submission.csv | cut -d, -f1)

# With the onnx extra the folder carries the ONNX export and the pages are read by ONNX Runtime.
$(MODEL_DIR)/model.json: $(FT) $(DET)
	$(VPY) -m kr make-model-folder $(DET) $(FT) --out $(MODEL_DIR) --overwrite $(CLASSIFY_TTA) \
	    $$(test -n "$(HAVE_ORT)" && echo --onnx)

$(READING_DIR)/.complete: $(MODEL_DIR)/model.json
	$(VPY) -m kr recognize $(DEMO_DATA)/test_images --model $(MODEL_DIR) --out $(READING_DIR) \
	    $$(test -n "$(HAVE_ORT)" && echo --backend onnxruntime)
	touch $@

demo-report:
	@$(VPY) -c 'import json, sys; \
	before = json.load(open("$(dir $(SUB_BEFORE))metrics.json")); \
	after = json.load(open("$(DEMO_OUT)/metrics.json")); \
	print(); \
	print("synthetic test pages: $(DEMO_TEST_PAGES); detector and classifier trained with --preset demo"); \
	print("F1 before pseudo-label finetuning: {:.4f} (precision {:.4f}, recall {:.4f})".format(before["f1"], before["precision"], before["recall"])); \
	print("F1 after  pseudo-label finetuning: {:.4f} (precision {:.4f}, recall {:.4f})".format(after["f1"], after["precision"], after["recall"]))'
	@echo "submission  $(SUB)"
	@echo "metrics     $(DEMO_OUT)/metrics.json (per page: $(DEMO_OUT)/submission/pages.csv)"
	@echo "pictures    $(DEMO_OUT)/train_page.png $(DEMO_OUT)/test_page_before.png $(DEMO_OUT)/test_page.png"
	@echo "model       $(MODEL_DIR) (kr recognize PAGE... --model $(MODEL_DIR) --out DIR)"
	@echo "reading     $(READING_DIR) (per test page: TXT, JSON, TEI and PNG in reading order)"
	@test ! -f .demo-start || echo "wall time   $$(( $$(date +%s) - $$(cat .demo-start) )) s (install excluded)"

clean-demo:
	rm -rf $(DEMO_DATA) $(DEMO_SPLIT) $(DEMO_CROPS) $(DEMO_OUT) .demo-start
