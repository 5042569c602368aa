#!/usr/bin/env bash
# The main job, end to end with embedded defaults: the deepest stack that
# exists today. Now: a busybox bundle run by runpy-oci.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

work=$(mktemp -d /tmp/runpy-demo.XXXXXX)
state=$work/state
cleanup() {
    .venv/bin/runpy-oci --root "$state" delete --force demo >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

bash bundles/make-busybox-bundle.sh "$work/bundle" --config hello >/dev/null
echo "== runpy-oci run: a busybox container from $work/bundle"
.venv/bin/runpy-oci --root "$state" run --bundle "$work/bundle" demo
echo "== exit status $?"
