# M2FRunner (m2f_mm/engine/runner.py): torchrun / slurm on CUDA or CPU, strict checkpoint loading, exact
# resume, bad-sample and NaN guards. mim train and mmdet's / mmseg's tools reach it through runner_type.
runner_type = 'M2FRunner'
partial_load = False       # True (or --partial-load): load checkpoints that do not fit, listing what stayed at init
nonfinite_steps = 'raise'  # 'skip': skip optimizer steps with a NaN/inf loss or gradient, counted in the log
