# Shared by tools/dist_*.sh and tools/slurm_*.sh (sourced, not run).
#
# m2f_python: the Python to launch with: $M2F_PYTHON, else the project's environment made by
# tools/setup_env.sh ($M2F_VENV or ./.venv) when it exists, else python3 / python from PATH.
m2f_python() {
  local root venv
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  venv=${M2F_VENV:-$root/.venv}
  if [ -n "${M2F_PYTHON:-}" ]; then echo "$M2F_PYTHON"
  elif [ -x "$venv/bin/python" ]; then echo "$venv/bin/python"
  elif command -v python3 >/dev/null; then echo python3
  else echo python; fi
}

# m2f_require_count NAME VALUE: VALUE must be a positive integer.
m2f_require_count() {
  case "$2" in
    ''|*[!0-9]*|0) echo "m2f_mm: $1 must be a positive integer, got '${2}'" >&2; exit 2 ;;
  esac
}

# m2f_check_port PYTHON PORT: the rendezvous port must be free on the node that hosts it (node rank 0).
m2f_check_port() {
  "$1" - "$2" <<'PYEOF' || exit 1
import socket, sys
port = int(sys.argv[1])
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    sock.bind(('', port))
except OSError as err:
    sys.exit(f'm2f_mm: port {port} is in use on this machine ({err.strerror}): another distributed run, or another '
             f'program, holds it. Choose a free one, e.g. PORT={port + 1} bash tools/dist_train.sh ...')
finally:
    sock.close()
PYEOF
}

# m2f_torchrun NUM_PROCESSES TOOL ARGS...: torchrun TOOL on this node (NNODES, NODE_RANK, MASTER_ADDR, PORT).
m2f_torchrun() {
  local nproc=$1 tool=$2 here py
  shift 2
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  m2f_require_count NUM_PROCESSES "$nproc"
  m2f_require_count NNODES "${NNODES:-1}"
  py=$(m2f_python)
  if [ "${NODE_RANK:-0}" = 0 ]; then m2f_check_port "$py" "${PORT:-29500}"; fi
  PYTHONPATH="$here/..:${PYTHONPATH:-}" exec "$py" -m torch.distributed.run \
      --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
      --master_port="${PORT:-29500}" --nproc_per_node="$nproc" "$here/$tool" "$@" --launcher pytorch
}

# m2f_srun PARTITION JOB_NAME TOOL ARGS...: srun one process per task (GPUS, GPUS_PER_NODE, TASKS_PER_NODE,
# CPUS_PER_TASK, SRUN_ARGS); GPUS_PER_NODE=0 asks for no GPUs (CPU nodes).
m2f_srun() {
  local partition=$1 job=$2 tool=$3 here gres=()
  shift 3
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  local gpus=${GPUS:-8} per_node=${GPUS_PER_NODE:-8}
  local tasks_per_node=${TASKS_PER_NODE:-$per_node}
  m2f_require_count GPUS "$gpus"
  m2f_require_count TASKS_PER_NODE "$tasks_per_node"
  if [ "$per_node" != 0 ]; then gres=(--gres="gpu:$per_node"); fi
  # shellcheck disable=SC2086  # SRUN_ARGS holds several words on purpose
  PYTHONPATH="$here/..:${PYTHONPATH:-}" exec srun -p "$partition" --job-name="$job" "${gres[@]}" \
      --ntasks="$gpus" --ntasks-per-node="$tasks_per_node" --cpus-per-task="${CPUS_PER_TASK:-5}" \
      --kill-on-bad-exit=1 ${SRUN_ARGS:-} "$(m2f_python)" -u "$here/$tool" "$@" --launcher=slurm
}
