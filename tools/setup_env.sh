#!/usr/bin/env bash
# One-shot environment set-up for m2f_mm on a fresh Linux machine.
#
#   bash tools/setup_env.sh            # creates ./.venv and installs m2f_mm (editable) + the stack
#                                      # (extras dev, analysis and deploy: onnx / onnxruntime for m2f_mm.deploy)
#
# Environment knobs:
#   M2F_VENV=PATH        where the virtual environment goes (default: ./.venv)
#   M2F_WHEELS=DIR       extra local wheel directory (default: ../shared/wheels when it exists;
#                        M2F_WHEELS=none forces the from-source mmcv build)
#   M2F_TORCH=SPEC       torch requirement (default: torch==2.13.0, the CPU build this machine has;
#                        on a CUDA machine install your CUDA torch first and set M2F_TORCH=skip)
#   MAX_JOBS=N           parallel compile jobs when mmcv must be built from source (default: nproc)
#   M2F_WHEEL_CACHE=DIR  where a from-source mmcv build leaves its wheel, one folder per torch build
#                        (default: ${XDG_CACHE_HOME:-~/.cache}/m2f_mm/wheels; DIR/torch-2.13.0+cpu/)
#
# mmcv 2.1.0 has no prebuilt wheel for torch 2.13, so without a local wheel it is built from its
# PyPI sdist with compiled ops (~17 min on 2 cores; CUDA ops too when nvcc and a CUDA torch exist).
# The build is kept as a wheel in M2F_WHEEL_CACHE/torch-VERSION/: the next set-up (another clone,
# a rebuilt venv) and tests/tools/test_pip_install.py install that wheel instead of compiling again.
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${M2F_VENV:-$here/.venv}
stamp=$venv/.m2f_mm_installed
req_hash=$(cat "$here/setup.py" "$here/tools/setup_env.sh" | sha1sum | cut -c1-12)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_hash" ]; then
  exit 0   # already set up with these requirements
fi

wheels=${M2F_WHEELS:-}
if [ -z "$wheels" ] && [ -d "$here/../shared/wheels" ]; then wheels=$(cd "$here/../shared/wheels" && pwd); fi
if [ "$wheels" = none ]; then wheels=; fi
if [ -n "$wheels" ]; then
  echo "[setup] using local wheels from $wheels"
  export PIP_FIND_LINKS="${PIP_FIND_LINKS:+$PIP_FIND_LINKS }$wheels"
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating virtual environment $venv"
  python3 -m venv "$venv"
fi
py=$venv/bin/python
pip() { "$py" -m pip --disable-pip-version-check "$@"; }

pip install -q --upgrade pip
torch_spec=${M2F_TORCH:-torch==2.13.0}
if [ "$torch_spec" != skip ]; then
  echo "[setup] installing $torch_spec"
  pip install -q "$torch_spec"
fi
# mmcv's setup.py imports pkg_resources (setuptools < 81) and must see the installed torch;
# torch 2.13 itself requires setuptools >= 77.0.3 (the same range as setup.py).
pip install -q "setuptools>=77.0.3,<81" wheel ninja numpy

# A wheel compiled against this exact torch build (version + CUDA tag) by an earlier set-up.
torch_build=$("$py" -c "import torch; print(torch.__version__)")
wheel_cache=${M2F_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/m2f_mm/wheels}/torch-$torch_build
if [ -d "$wheel_cache" ]; then
  export PIP_FIND_LINKS="${PIP_FIND_LINKS:+$PIP_FIND_LINKS }$wheel_cache"
fi

if ! "$py" -c "import mmcv, mmcv.ops" 2>/dev/null; then
  if pip install -q --no-deps --only-binary=mmcv "mmcv==2.1.0" 2>/dev/null; then
    echo "[setup] mmcv 2.1.0 installed from a prebuilt wheel"
  else
    echo "[setup] no mmcv wheel found: building mmcv 2.1.0 with compiled ops from source (~17 min on 2 cores)"
    if command -v nvcc >/dev/null && "$py" -c "import torch,sys; sys.exit(0 if torch.version.cuda else 1)"; then
      export FORCE_CUDA=1
      echo "[setup] nvcc and a CUDA torch found: building the CUDA ops too"
    fi
    mkdir -p "$wheel_cache"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} pip wheel --no-build-isolation --no-deps --no-binary=mmcv \
      -w "$wheel_cache" "mmcv==2.1.0"
    pip install -q --no-deps "$wheel_cache"/mmcv-2.1.0-*.whl
    echo "[setup] kept the mmcv wheel in $wheel_cache for the next set-up"
  fi
fi

echo "[setup] installing m2f_mm (editable) and its requirements"
pip install -q -e "$here[dev,analysis,deploy]"
"$py" -c "import mmcv.ops, mmdet.models, mmseg.models, m2f_mm; print('[setup] ok: mmcv', mmcv.__version__)"
echo "$req_hash" > "$stamp"
