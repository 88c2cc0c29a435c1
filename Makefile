# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed here, into .venv, on a fresh machine.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= test

DEMO_DATA := data/kuzushiji-recognition-synthetic
DEMO_SPLIT := $(DEMO_DATA)-gsplit
DEMO_CROPS := $(DEMO_DATA)-crops
DEMO_OUT := results/demo
DEMO_TRAIN_PAGES ?= 120
DEMO_TEST_PAGES ?= 30

.PHONY: install test demo clean-demo

install: $(STAMP)

# Chainer 7.8.1 ships only an sdist that builds with setuptools<70 and without build
# isolation; everything else comes as wheels.
$(STAMP): setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "kr needs Python 3.11, found " + sys.version' 
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet "setuptools<70" wheel
	$(VPY) -m pip install --quiet --no-build-isolation -e ".[$(EXTRAS)]"
	touch $(STAMP)

test: install
	$(VPY) -m pytest tests

demo: install
	$(VPY) scripts/00_make_synthetic_dataset.py --out $(DEMO_DATA) --overwrite \
	    --train-pages $(DEMO_TRAIN_PAGES) --test-pages $(DEMO_TEST_PAGES) --seed 0
	$(VPY) scripts/01_split_train_val.py --data-dir $(DEMO_DATA) --split-dir $(DEMO_SPLIT)
	$(VPY) scripts/02_crop_characters.py --data-dir $(DEMO_DATA) --split-dir $(DEMO_SPLIT) \
	    --out $(DEMO_CROPS) --overwrite
	mkdir -p $(DEMO_OUT)
	$(VPY) scripts/09_visualize.py --data-dir $(DEMO_DATA) \
	    --image-id $$(sed -n 2p $(DEMO_DATA)/train.csv | cut -d, -f1) --out $(DEMO_OUT)/train_page.png
	@echo
	@echo "made:"
	@echo "  dataset     $(DEMO_DATA): $$(ls $(DEMO_DATA)/train_images | wc -l) train pages, $$(ls $(DEMO_DATA)/test_images | wc -l) test pages, $$(($$(wc -l < $(DEMO_DATA)/unicode_translation.csv) - 1)) classes"
	@echo "  split       $(DEMO_SPLIT): $$(ls $(DEMO_SPLIT) | grep csv | tr '\n' ' ')"
	@echo "  crops       $(DEMO_CROPS): $$(find $(DEMO_CROPS)/char_images -name '*.png' | wc -l) character crops"
	@echo "  picture     $(DEMO_OUT)/train_page.png"

clean-demo:
	rm -rf $(DEMO_DATA) $(DEMO_SPLIT) $(DEMO_CROPS) $(DEMO_OUT)
