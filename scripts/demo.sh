#!/usr/bin/env bash
# The main job, end to end with embedded defaults: the deepest stack that
# exists today.
#   1. a busybox bundle run by runpy-oci;
#   2. containerd-py (its default root, state and socket) with the busybox
#      image (built locally from busybox-static: no registry is reachable),
#      and a container run through containerd-py -> runpy-oci;
#   3. engine-py (in a network namespace of its own, its directories and
#      socket under the demo's, its own containerd-py) with the same image,
#      and `docker run --rm busybox echo ...` through
#      engine-py -> containerd-py -> runpy-oci; then a Dockerfile (busybox
#      httpd serving a page copied from the build context) built by the
#      engine, run with a published port (`-p 8080:80`) on the engine's
#      default bridge, and answered over HTTP from the engine's namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

work=$(mktemp -d /tmp/runpy-demo.XXXXXX)
state=$work/state
socket=/run/containerd-py/containerd.sock
ctl=(.venv/bin/containerd-py-ctl --address "$socket")
daemon_pid=""
engine=$work/engine
engine_ns=runpy-demo-$$   # the engine's network namespace and its containers' cgroup parent
engine_namespace=demo    # the engine's containerd namespace (its images and containers there)
docker=(docker -H "unix://$engine/engine.sock")
engine_pid=""
cleanup() {
    .venv/bin/runpy-oci --root "$state" delete --force demo >/dev/null 2>&1 || true
    "${ctl[@]}" rm --force demo >/dev/null 2>&1 || true
    if [ -n "$daemon_pid" ]; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    if [ -n "$engine_pid" ]; then   # the engine leaves containers running when it stops: remove them first
        ids=$("${docker[@]}" ps -aq 2>/dev/null || true)
        [ -z "$ids" ] || "${docker[@]}" rm -f $ids >/dev/null 2>&1 || true
        kill -TERM "$engine_pid" 2>/dev/null || true   # it stops its containerd-py
        wait "$engine_pid" 2>/dev/null || true
    fi
    ip netns del "$engine_ns" 2>/dev/null || true
    for cg in /sys/fs/cgroup/*/"$engine_ns"; do
        [ ! -d "$cg" ] || rmdir "$cg" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

bash bundles/make-busybox-bundle.sh "$work/bundle" --config hello >/dev/null
echo "== runpy-oci run: a busybox container from $work/bundle"
.venv/bin/runpy-oci --root "$state" run --bundle "$work/bundle" demo
echo "== exit status $?"

if "${ctl[@]}" --connect-timeout 1 containers ls -q >/dev/null 2>&1; then
    echo "== containerd-py already serves $socket: using it"
else
    echo "== starting containerd-py (root /var/lib/containerd-py, state /run/containerd-py, socket $socket)"
    .venv/bin/containerd-py >"$work/containerd-py.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 100); do
        "${ctl[@]}" --connect-timeout 1 containers ls -q >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/containerd-py.log" >&2; exit 1; }
        sleep 0.1
    done
fi
python3 bundles/make-busybox-image.py "$work/busybox.tar"
echo "== containerd-py-ctl import: the busybox image"
"${ctl[@]}" import "$work/busybox.tar"
echo "== containerd-py-ctl run --rm: through containerd-py -> runpy-oci"
"${ctl[@]}" run --rm docker.io/library/busybox:latest demo \
    sh -c 'echo "hello from a container run by containerd-py with runpy-oci (pid $$, host $(hostname))"'
echo "== exit status $?"

echo "== starting engine-py in network namespace $engine_ns (data-root, exec-root and socket under $engine; its own containerd-py)"
ip netns add "$engine_ns"
ip -n "$engine_ns" link set lo up
mkdir -p "$engine"
echo '{}' >"$engine/daemon.json"
nsenter --net="/run/netns/$engine_ns" .venv/bin/engine-py --data-root "$engine/data" --exec-root "$engine/exec" \
    --pidfile "$engine/engine.pid" -H "unix://$engine/engine.sock" --config-file "$engine/daemon.json" \
    --containerd-namespace "$engine_namespace" --cgroup-parent "/$engine_ns" >"$work/engine-py.log" 2>&1 &
engine_pid=$!
for _ in $(seq 200); do
    "${docker[@]}" version >/dev/null 2>&1 && break
    kill -0 "$engine_pid" 2>/dev/null || { cat "$work/engine-py.log" >&2; exit 1; }
    sleep 0.1
done
echo "== docker load: the same busybox image (an OCI archive) into the engine"
"${docker[@]}" load -i "$work/busybox.tar"
echo "== docker run --rm busybox: through engine-py -> containerd-py -> runpy-oci"
"${docker[@]}" run --rm busybox \
    sh -c 'echo "hello from a container run by engine-py through containerd-py with runpy-oci (pid $$, host $(hostname))"'
echo "== exit status $?"
echo "== docker build: a Dockerfile built by engine-py (each RUN through containerd-py -> runpy-oci)"
mkdir "$work/site"
echo "hello over HTTP from an image built and run by engine-py" > "$work/site/index.html"
cat > "$work/site/Dockerfile" <<'DOCKERFILE'
FROM busybox
COPY index.html /www/index.html
RUN chmod 0444 /www/index.html && ls -l /www
EXPOSE 80
CMD ["httpd", "-f", "-h", "/www", "-p", "80"]
DOCKERFILE
DOCKER_BUILDKIT=0 "${docker[@]}" build -t demo-site "$work/site" 2>&1 | grep -v -e DEPRECATED -e BuildKit -e environment-variable -e '^ *$'
echo "== docker run -d -p 8080:80 demo-site: a published port on the engine's default bridge"
"${docker[@]}" run -d --name web -p 8080:80 demo-site >/dev/null
"${docker[@]}" port web
fetch='import sys, time, urllib.request
for _ in range(100):
    try:
        sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:8080/index.html", timeout=2).read().decode())
        break
    except OSError:
        time.sleep(0.05)
else:
    sys.exit("no answer on 127.0.0.1:8080")'
echo "== GET http://127.0.0.1:8080/ in the engine's namespace"
ip netns exec "$engine_ns" python3 -c "$fetch"
"${docker[@]}" rm -f web >/dev/null
