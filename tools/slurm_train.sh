#!/usr/bin/env bash
# Training on a slurm cluster, one process per task (mmdet's argument order):
#
#   [GPUS=16] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py args...]
#
# GPUS is the number of processes in all; GPUS_PER_NODE=0 runs on CPU nodes (no --gres), with
# TASKS_PER_NODE processes per node. The rendezvous port is MASTER_PORT (default 29500).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
if [ $# -lt 4 ]; then sed -n '2,8p' "$0" >&2; exit 2; fi
m2f_srun "$1" "$2" train.py "$3" --work-dir="$4" "${@:5}"
