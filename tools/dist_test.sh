#!/usr/bin/env bash
# Distributed evaluation with torchrun, on CUDA GPUs or on CPU (gloo), one machine or several.
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [tools/test.py args...]
#
# Results of all processes are gathered; the metrics equal a single-process run's.
# Several machines: NNODES, NODE_RANK, MASTER_ADDR, PORT as for tools/dist_train.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
if [ $# -lt 3 ]; then sed -n '2,7p' "$0" >&2; exit 2; fi
m2f_torchrun "$3" test.py "$1" "$2" "${@:4}"
