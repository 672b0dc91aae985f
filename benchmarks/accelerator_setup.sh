#!/usr/bin/env bash
# The accelerator suite on a GPU machine that has no internet.
#
# A bare GPU machine with jax (CUDA), flax, optax, orbax, chex and torch lacks what advjax and
# the reference implementations need beyond them. Prepare the wheels where pip reaches PyPI,
# carry the folder over, install them there without an index, and run the suite:
#
#   bash benchmarks/accelerator_setup.sh download .whl [PYTHON_VERSION]   # here (default 3.12)
#   bash benchmarks/accelerator_setup.sh run .whl [accelerator.py flags]  # on the GPU machine
#
# `download` fetches binary wheels for manylinux x86-64 and the given Python, without their
# dependencies (the list below is complete for such a machine). `run` installs them into
# /tmp/advjax-site (nothing in the machine's own environment changes), puts that and this
# checkout on PYTHONPATH and runs `python3 -m benchmarks.accelerator` with the flags given.
set -euo pipefail
cd "$(dirname "$0")/.."

# name==version: what advjax's core and train extra need beyond the GPU image, and the
# reference implementations the suite compares against (all pure-Python wheels).
WHEELS=(
  dm-pix==0.4.5
  ml-collections==1.1.0
  tensorboardX==2.6.5
  torchattacks==3.5.1
  pyautoattack==0.2.0
  robustbench==1.1.1
)

mode="${1:-}"
dir="${2:-.whl}"
case "$mode" in
  download)
    py="${3:-3.12}"
    mkdir -p "$dir"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d "$dir" "${WHEELS[@]}"
    ls -1 "$dir"
    ;;
  run)
    shift 2 || shift $#
    # torchattacks' wheel bundles an old copy of the robustbench package (ModelInfo without
    # the 3D-corruption fields); the real robustbench goes in last, over it.
    pip_target=(python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir
                --upgrade --target /tmp/advjax-site)
    "${pip_target[@]}" $(ls "$dir"/*.whl | grep -v '/robustbench-')
    "${pip_target[@]}" "$dir"/robustbench-*.whl
    export PYTHONPATH="/tmp/advjax-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONUNBUFFERED=1
    exec python3 -m benchmarks.accelerator "$@"
    ;;
  *)
    echo "usage: $0 download DIR [PYTHON_VERSION] | run DIR [accelerator.py flags]" >&2
    exit 2
    ;;
esac
