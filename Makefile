# m2f_mm: every target sets up ./.venv first (idempotent: ~1 min with ../shared/wheels, ~20 min without).
PY ?= .venv/bin/python
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test forward clean

setup:
	bash tools/setup_env.sh

## The main job on the bundled small data.
demo: setup
	$(PY) tools/demo_forward.py configs/m2f_r50_8xb2-lsj-50e_coco-panoptic.py

## The test suite (what .ci/run calls).
test: setup
	$(PY) -m pytest tests -q -p no:cacheprovider

forward: setup
	$(PY) tools/demo_forward.py configs/m2f_r50_8xb2-lsj-50e_coco-panoptic.py

clean:
	rm -rf .venv work_dirs outputs *.egg-info
