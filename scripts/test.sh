#!/usr/bin/env bash
# The whole test suite: unit tests (no root), integration tests (root, real
# kernel), containerd_py's tests (with containerd's ctr as a peer), and the
# conformance harness run against runpy-oci, real runc and crun.
# Extra arguments go to every pytest run (e.g. -x, -k NAME).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

py=.venv/bin/python
status=0
run() {
    echo "== $*"
    "$@" || status=1
}
run $py -m pytest -q -p no:cacheprovider tests/unit tests/integration tests/containerd_py "$@"
for runtime in "$PWD/.venv/bin/runpy-oci" "$(command -v runc)" "$(command -v crun)"; do
    RUNTIME=$runtime run $py -m pytest -q -p no:cacheprovider tests/conformance "$@"
done
exit $status
