#!/usr/bin/env bash
# Dry run of benches/gpu_reinforce_check.py on the CPU, shaped like the GPU device image: a venv from
# scripts/device-like-venv (no open_clip, ftfy, wcwidth, braceexpand, mobileclip_fastload), with the
# device's transformers 5 / tokenizers / huggingface-hub installed into it, then exactly the device's
# steps: the carried wheels (.whl/) installed with `pip install --target`, the check with tiny models,
# and last the preflight that the real-size coca_ViT-L-14 can generate there.
#
# Usage: benches/gpu_reinforce_dry_run.sh [OUT_DIR]     (from the repository root; .whl/ filled first,
#        see docs/REINFORCE.md "On a GPU: the prepared check")
set -euo pipefail
out=${1:-/tmp/gpu-reinforce-dry-run}
venv=${VENV:-/tmp/gpu-reinforce-device-venv}
site=${SITE:-/tmp/gpu-reinforce-site}
device_wheels=${DEVICE_WHEELS:-/tmp/gpu-reinforce-device-wheels}  # what the device image itself has
mkdir -p "$out"
ls .whl/*.whl >/dev/null  # the carried wheels
scripts/device-like-venv "$venv"
if ! ls "$device_wheels"/transformers-5.* >/dev/null 2>&1; then
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$device_wheels" \
        transformers==5.17.0 tokenizers==0.23.2 huggingface-hub==1.33.0
    # the device has httpx (huggingface-hub 1.x and transformers 5 import it); this machine may not
    python3 -m pip download -q --only-binary=:all: -d "$device_wheels" httpx
fi
"$venv/bin/python" -m pip install -q --no-index --no-deps "$device_wheels"/*.whl
"$venv/bin/python" - <<'PY'
import importlib.util, transformers
assert transformers.__version__.startswith("5."), transformers.__version__
assert not importlib.util.find_spec("open_clip"), "open_clip must be missing, as on the device"
print("device shape: transformers", transformers.__version__, "and no open_clip / ftfy / wcwidth / braceexpand")
PY
# the device's own steps (its command line)
rm -rf "$site"
"$venv/bin/python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
export PYTHONPATH="$site:python" PYTHONUNBUFFERED=1
"$venv/bin/python" benches/gpu_reinforce_check.py --tiny --out "$out" 2>&1 | grep -v "No pretrained weights" 
"$venv/bin/python" benches/gpu_reinforce_check.py --preflight-only --out "$out/preflight-real-size" 2>&1 \
    | grep -v "No pretrained weights"
