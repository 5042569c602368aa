#!/usr/bin/env bash
# The whole test suite: unit tests (no root), integration tests (root, real
# kernel), containerd_py's tests (with containerd's ctr as a peer), the
# engine's (real dockerd as the oracle), and the
# conformance harness run against runpy-oci, real runc and crun.
# Extra arguments go to every pytest run (e.g. -x, -k NAME).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

py=.venv/bin/python
status=0
# One private base directory per run: pytest's shared /tmp/pytest-of-root
# would be pruned by any other pytest on the machine in the middle of ours.
base=$(mktemp -d /tmp/pytest-run.XXXXXX)
trap 'rm -rf "$base"' EXIT
n=0
pytest() {
    n=$((n + 1))
    echo "== pytest $*"
    $py -m pytest -q -p no:cacheprovider --basetemp="$base/$n" "$@" || status=1
}
pytest tests/unit tests/integration tests/containerd_py tests/engine "$@"
for runtime in "$PWD/.venv/bin/runpy-oci" "$(command -v runc)" "$(command -v crun)"; do
    echo "== RUNTIME=$runtime"
    RUNTIME=$runtime pytest tests/conformance "$@"
done
exit $status
