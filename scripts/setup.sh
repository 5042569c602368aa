#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine (as root):
# Debian packages (the real runtimes we test against, busybox for bundles,
# build tools), then a virtual environment in .venv with this package and its
# C extension built. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(python3 python3-venv python3-dev runc crun containerd docker-registry skopeo podman apache2-utils openssl busybox-static iproute2 nftables util-linux gcc libseccomp-dev zlib1g-dev time docker.io docker-compose)

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
# docker.io is only an oracle for the engine's tests, which start private
# daemons: a dockerd or containerd its package may have started (where
# policy-rc.d allows it) would own /run/docker.sock and /run/containerd.
for unit in docker.socket docker containerd; do
    if command -v systemctl >/dev/null && systemctl is-active -q "$unit" 2>/dev/null; then
        echo "setup: stopping $unit, started by its package"
        systemctl stop "$unit"
        systemctl disable -q "$unit" 2>/dev/null || true
    fi
done
# Without systemd, docker.io's init script starts dockerd (which starts its
# containerd) and records it in /run/docker.pid.
pid=$(cat /run/docker.pid 2>/dev/null || true)
if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
    echo "setup: stopping dockerd (pid $pid), started by its package"
    if [ -x /etc/init.d/docker ]; then /etc/init.d/docker stop >/dev/null || kill "$pid"; else kill "$pid"; fi
fi

# Debian's python3 by default, not whatever `python3` is first on PATH (here
# a pyenv build): Debian links libpython into the executable, so an
# interpreter starts without relocating a shared libpython and runs ~3-4%
# faster, which every runtime verb pays (bench/runtime.py), and the daemon
# maps ~0.7 MiB less (bench/pull.py).
PYTHON=${PYTHON:-/usr/bin/python3}
PYTHON=$(readlink -f "$("$PYTHON" -c 'import sys; print(sys.executable)')")
if [ -x .venv/bin/python ] && [ "$(readlink -f .venv/bin/python)" != "$PYTHON" ]; then
    echo "setup: .venv was made from $(readlink -f .venv/bin/python), not $PYTHON: making it again"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-from
want=$(cat pyproject.toml setup.py runpy_oci/_build_*.py runpy_oci/exec_helper.c containerd_py/shim/shim.c engine/logs/logger.c scripts/runpy-oci | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! .venv/bin/python -c 'import runpy_oci._sys' 2>/dev/null \
        || [ ! -x containerd_py/shim/containerd-py-shim ] || [ ! -x runpy_oci/runpy-oci-exec ] \
        || [ ! -x engine/logs/engine-py-logger ]; then
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
