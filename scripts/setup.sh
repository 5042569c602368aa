#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine (as root):
# Debian packages (the real runtimes we test against, busybox for bundles,
# build tools), then a virtual environment in .venv with this package and its
# C extension built. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(runc crun containerd docker-registry skopeo podman apache2-utils openssl busybox-static iproute2 util-linux gcc libseccomp-dev time)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-$(command -v python3)}
# pyenv's shim is a shell script; resolve the real interpreter so the venv
# (and every runpy-oci call) starts without it.
PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-from
want=$(cat pyproject.toml setup.py runpy_oci/_build_*.py runpy_oci/exec_helper.c containerd_py/shim/shim.c scripts/runpy-oci | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! .venv/bin/python -c 'import runpy_oci._sys' 2>/dev/null \
        || [ ! -x containerd_py/shim/containerd-py-shim ] || [ ! -x runpy_oci/runpy-oci-exec ]; then
    echo "setup: installing the Python package and its C extension into .venv"
    .venv/bin/pip install -q --upgrade pip >/dev/null
    if ! .venv/bin/pip install -q --config-settings editable_mode=compat -e '.[test]' >.venv/install.log 2>&1; then
        cat .venv/install.log >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi
# setuptools comes in with grpcio-tools (tests only); its .pth file imports
# _distutils_hack at every interpreter start, ~1 ms of every runtime verb.
rm -f .venv/lib/python3*/site-packages/distutils-precedence.pth
# Byte-compile: the runtime's hot verbs start a fresh interpreter on every
# call, and with PYTHONDONTWRITEBYTECODE set nothing would ever cache them.
.venv/bin/python -m compileall -q runpy_oci containerd_py engine >/dev/null
