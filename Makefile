# m2f_mm: every target sets up ./.venv first (idempotent: ~1 min with ../shared/wheels, ~25 min without).
PY ?= .venv/bin/python
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo ablations ablation baseline test forward benchmarks benchmark-openmmlab clean

setup:
	bash tools/setup_env.sh

## The main job: synthetic data -> train -> PQ / mask AP / mIoU -> outputs/demo/{curves,overlays}.png, results.md
demo: setup
	$(PY) tools/demo/run_demo.py

## The papers' claims side by side, 1000 iterations each, 3 seeds each: Mask2Former's ablations and MaskFormer,
## per-pixel vs mask classification, one model for three tasks -> outputs/demo-1000it/ablations.md (docs/demo.md)
ablations: setup
	$(PY) tools/demo/run_demo.py --ablations --reuse --iters 1000

ablation: ablations

## mmdet 3.3.0's own Mask2Former on the same data, schedule and seeds -> outputs/demo/baseline.{md,png}
baseline: setup
	$(PY) tools/demo/run_demo.py --baseline mmdet --reuse

## The test suite (what .ci/run calls): 2 worker processes, a test file's tests in one of them, one thread each.
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -q -p no:cacheprovider -n 2 --dist loadfile --durations=15

## While developing: the suite without the tests marked slow (the subprocess-heavy ones), a few minutes.
test-fast: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -q -p no:cacheprovider -n 2 --dist loadfile -m "not slow"

## Build the COCO R50 model from its config and run one forward pass on a random image.
forward: setup
	$(PY) tools/demo/demo_forward.py configs/m2f_r50_8xb2-lsj-50e_coco-panoptic.py

## Memory of the point-sampled loss and of inference, PQ evaluation speed (README, Benchmarks).
benchmarks: setup
	$(PY) benchmarks/memory_point_loss.py --device cpu --runs 3 --size 512
	$(PY) benchmarks/inference_memory.py
	$(PY) benchmarks/pq_throughput.py

## Speed and memory side by side with mmdet's / mmseg's in-tree Mask2Former, 1 and 2 threads (~30-40 min; docs/performance.md).
benchmark-openmmlab: setup
	$(PY) benchmarks/benchmark.py

clean:
	rm -rf .venv work_dirs outputs *.egg-info
