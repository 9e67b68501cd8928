#!/usr/bin/env bash
# Distributed training with torchrun, on CUDA GPUs or on CPU (gloo), one machine or several.
#
#   bash tools/dist_train.sh CONFIG NUM_PROCESSES [tools/train.py args...]
#
# NUM_PROCESSES is per machine (one per GPU; on CPU the processes share the cores).
# Several machines: run the same command on each, with
#   NNODES=2 NODE_RANK=0|1 MASTER_ADDR=<address of node 0> PORT=29500 bash tools/dist_train.sh CONFIG N ...
# Uses the environment made by tools/setup_env.sh when it exists (tools/_launch.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
if [ $# -lt 2 ]; then sed -n '2,9p' "$0" >&2; exit 2; fi
m2f_torchrun "$2" train.py "$1" "${@:3}"
