#!/usr/bin/env python3
"""Pull benchmark: containerd_py side by side with real containerd, in one run.

    python3 bench/pull.py [--runs N] [--quick] [--json FILE]

Builds two images once, in a temporary directory, from random data shaped to
compress like real files (gzip level 6 layers to about 68% of the tar, so
decompression and hashing cost what they cost in real life):
  * "single": one layer whose blob is about 50 MB;
  * "multi": ten layers of about 5 MB each;
puts them into one local docker-registry (127.0.0.1, a free port) with
skopeo, starts our daemon and real containerd, each with a private root,
and times the same client command against both:

    ctr --address SOCK -n NS images pull --plain-http 127.0.0.1:PORT/bench/IMAGE:latest

(fetch, then unpack into overlayfs snapshots, which `ctr images pull` does
by default). Every pull is cold: it runs in a fresh namespace, and the image,
its content and its snapshots are removed (and garbage-collected) before
the next one, which the bench checks on disk. Samples are interleaved and
the daemon order alternates. Also reports the daemons' CPU time per pull and
their resident memory (RSS) after the pulls. Prints numbers and ratios
(ours/containerd); decides nothing. See bench/README.md. Needs root.
Python 3.11 standard library only.
"""
import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

import benchlib
from benchlib import START_DEADLINE, cell, fmt, loadavg, log, ratio, rotate, stat_fields, summary, version

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MiB = 1 << 20
MTIME = 1_600_000_000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
CONTENT_BLOBS = ("io.containerd.content.v1.content", "blobs", "sha256")
CONTENT_INGEST = ("io.containerd.content.v1.content", "ingest")
OVERLAY_SNAPSHOTS = ("io.containerd.snapshotter.v1.overlayfs", "snapshots")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------
# Images: random files in gzip layers, an OCI layout, skopeo into the registry

# Byte tables that turn random bytes into data that compresses like real
# files: "binary" (16 skewed byte values, gzip -6 gets it to about 52%, as
# for executables and libraries) and "text" (64 characters, about 76%).
# "random" stays incompressible (about 100%, like already compressed assets).
_BINARY_COUNTS = (48, 40, 32, 24, 20, 16, 14, 12, 10, 8, 8, 6, 6, 6, 4, 2)
_BINARY_TABLE = bytes(v for v, n in zip(b"\x00\x48\x89\xc3\xff\x0f\x01\x8b\x24\x44\xe8\x74\x05\x10\x20\x7f",
                                        _BINARY_COUNTS) for _ in range(n))
_TEXT_TABLE = (b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n.," * 4)[:256]
# Expected compressed/uncompressed ratio of a layer of the mix below.
_MIX_RATIO = 0.68


def _content(size, kind):
    data = os.urandom(size)
    if kind == "binary":
        return data.translate(_BINARY_TABLE)
    if kind == "text":
        return data.translate(_TEXT_TABLE)
    return data


def _layer_files(total, seed):
    """(name, size, kind) of the regular files of one layer whose gzip blob is
    about `total` bytes. Of the uncompressed bytes, 4% are text in 4 KiB
    files, 32% binary in 256 KiB files, the rest in files of up to 4 MiB,
    half random and half binary, spread over a few directories."""
    plain = int(total / _MIX_RATIO)
    files = []
    small = max(1, round(plain * 0.04 / 4096))
    medium = max(1, round(plain * 0.32 / (256 << 10)))
    rest = plain - small * 4096 - medium * (256 << 10)
    big = []
    for kind, part in (("random", rest // 2), ("binary", rest - rest // 2)):
        while part > 0:
            big.append((min(4 * MiB, part), kind))
            part -= big[-1][0]
    for i in range(small):
        files.append((f"usr/share/bench{seed}/small/d{i % 16:02d}/f{i:04d}.txt", 4096, "text"))
    for i in range(medium):
        files.append((f"usr/lib/bench{seed}/medium/m{i:03d}.so", 256 << 10, "binary"))
    for i, (size, kind) in enumerate(big):
        files.append((f"opt/bench{seed}/big/b{i:02d}.bin", size, kind))
    return files


class _HashingWriter:
    """A file that hashes and counts what goes through it."""

    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, data):
        self.h.update(data)
        self.n += len(data)
        return self.f.write(data)

    def flush(self):
        self.f.flush()


def build_layer(blobs_dir, total, seed):
    """A gzip tar layer (level 6, as docker and containerd write) of random
    file contents (see _layer_files); returns (descriptor, diff_id, uncompressed size, entries)."""
    tmp = os.path.join(blobs_dir, f".layer-{seed}.tmp")
    entries = 0
    with open(tmp, "wb") as raw:
        compressed = _HashingWriter(raw)
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=6, mtime=0) as gz:
            plain = _HashingWriter(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                dirs = set()
                for name, size, kind in _layer_files(total, seed):
                    parts = name.split("/")[:-1]
                    for i in range(1, len(parts) + 1):
                        d = "/".join(parts[:i])
                        if d not in dirs:
                            dirs.add(d)
                            info = tarfile.TarInfo(d + "/")
                            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
                            tf.addfile(info)
                            entries += 1
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = size, 0o644, MTIME
                    tf.addfile(info, io.BytesIO(_content(size, kind)))
                    entries += 1
                link = tarfile.TarInfo(f"opt/bench{seed}/latest")
                link.type, link.linkname, link.mode, link.mtime = tarfile.SYMTYPE, "big/b00.bin", 0o777, MTIME
                tf.addfile(link)
                entries += 1
    digest = "sha256:" + compressed.h.hexdigest()
    os.rename(tmp, os.path.join(blobs_dir, digest.split(":")[1]))
    desc = {"mediaType": OCI_LAYER_GZIP, "digest": digest, "size": compressed.n}
    return desc, "sha256:" + plain.h.hexdigest(), plain.n, entries


def _put_blob(blobs_dir, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs_dir, digest.split(":")[1]), "wb") as f:
        f.write(data)
    return digest


def _json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build_images(layout, specs):
    """An OCI image layout holding one image per spec (name, [layer sizes])."""
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    index = []
    facts = {}
    seed = 0
    for name, sizes in specs:
        layers, diff_ids, plain, entries = [], [], 0, 0
        for size in sizes:
            seed += 1
            desc, diff_id, n, e = build_layer(blobs, size, seed)
            layers.append(desc)
            diff_ids.append(diff_id)
            plain += n
            entries += e
        config = _json({"architecture": "amd64", "os": "linux",
                        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
                        "rootfs": {"type": "layers", "diff_ids": diff_ids}})
        cdigest = _put_blob(blobs, config)
        manifest = _json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                          "config": {"mediaType": OCI_CONFIG, "digest": cdigest, "size": len(config)},
                          "layers": layers})
        mdigest = _put_blob(blobs, manifest)
        index.append({"mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(manifest),
                      "annotations": {"org.opencontainers.image.ref.name": name}})
        facts[name] = {"layers": len(layers), "compressed_bytes": sum(d["size"] for d in layers),
                       "uncompressed_bytes": plain, "tar_entries": entries}
    with open(os.path.join(layout, "oci-layout"), "wb") as f:
        f.write(_json({"imageLayoutVersion": "1.0.0"}))
    with open(os.path.join(layout, "index.json"), "wb") as f:
        f.write(_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}))
    return facts


# --------------------------------------------------------------------------
# Processes: the registry and the two daemons

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service(benchlib.Service):
    """A long-running process of the bench, in its own session, logging to a file."""

    def stop(self):
        """Stops it (see benchlib.Service.stop) and kills what it left in its
        session (it should have left nothing); returns those pids."""
        super().stop()
        left = session_members(self.proc.pid)
        benchlib.kill_all(left)
        return left


def session_members(sid):
    pids = []
    for pid in benchlib.proc_pids():
        try:
            rest = stat_fields(pid)
            if int(rest[3]) == sid and rest[0] not in (b"Z", b"X"):
                pids.append(pid)
        except (OSError, IndexError, ValueError):
            pass
    return pids


def start_registry(tmp, binary):
    workdir = os.path.join(tmp, "registry")
    os.mkdir(workdir)
    port = free_port()
    config = ["version: 0.1", "log:", "  level: warn", "  accesslog:", "    disabled: true", "storage:",
              "  filesystem:", f"    rootdirectory: {workdir}/data", "  delete:", "    enabled: true",
              "http:", f"  addr: 127.0.0.1:{port}", f"  secret: {secrets.token_hex(16)}"]
    with open(f"{workdir}/config.yml", "w") as f:
        f.write("\n".join(config) + "\n")
    svc = Service("registry", [binary, "serve", f"{workdir}/config.yml"], workdir)
    svc.host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + START_DEADLINE
    while True:
        svc.check_alive()
        try:
            urllib.request.urlopen(f"http://{svc.host}/v2/", timeout=5).close()
            return svc
        except urllib.error.HTTPError:
            return svc
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not answer:\n{svc.log_tail()}")
            time.sleep(0.05)


def start_daemon(tmp, name, python, containerd):
    """Our daemon or real containerd, each with its own root, state and socket."""
    workdir = os.path.join(tmp, name)
    os.mkdir(workdir)
    address = f"{workdir}/containerd.sock"
    if name == "ours":
        argv = [python, "-m", "containerd_py.daemon", "--root", f"{workdir}/root", "--state", f"{workdir}/state",
                "--address", address]
        env = dict(os.environ, PYTHONPATH=REPO)
    else:
        argv = [containerd, "--config", benchlib.write_containerd_config(workdir, address)]
        env = None
    svc = Service(name, argv, workdir, env)
    svc.address, svc.root = address, f"{workdir}/root"
    return svc


# --------------------------------------------------------------------------
# Measuring

def proc_status(pid):
    """VmRSS and VmHWM in MiB of one process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def tree(pid):
    """pid and its descendants."""
    children = {}
    for p in benchlib.proc_pids():
        try:
            children.setdefault(int(stat_fields(p)[1]), []).append(p)
        except (OSError, IndexError, ValueError):
            pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_rss(pid):
    total = 0.0
    for p in tree(pid):
        try:
            total += proc_status(p).get("VmRSS", 0)
        except OSError:
            pass
    return total


def cpu_ms(pid):
    """User + system CPU of a process (its threads included) so far, and of its reaped children."""
    ticks = sum(int(x) for x in stat_fields(pid)[11:15])  # utime stime cutime cstime
    return ticks * 1000 / CLK_TCK


class Bench:
    def __init__(self, tmp, ctr):
        self.tmp, self.ctr = tmp, ctr
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.errors = []  # (daemon, what, exit status, output)
        self.n = 0

    def run_ctr(self, daemon, ns, *args, what=None, note_stderr=False):
        """One ctr command against daemon; (ok, wall ms, client CPU ms, stdout).
        A failure is recorded with what ctr printed on stderr; with
        note_stderr, so is anything printed on stderr by a command that worked."""
        out_path, err_path = os.path.join(self.tmp, "ctr.out"), os.path.join(self.tmp, "ctr.err")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            argv = benchlib.ctr_argv(self.ctr, daemon, ns, *args)
            t0 = time.perf_counter_ns()
            p = subprocess.Popen(argv, stdin=self.devnull, stdout=out, stderr=err)
            try:
                _, status, ru = os.wait4(p.pid, 0)
            except BaseException:
                p.kill()
                p.wait()
                raise
            t1 = time.perf_counter_ns()
            p.returncode = os.waitstatus_to_exitcode(status)
        with open(out_path, "rb") as f:
            text = f.read().decode(errors="replace")
        with open(err_path, "rb") as f:
            err_text = f.read().decode(errors="replace").strip()
        ok = p.returncode == 0
        what = what or " ".join(args[:2])
        if not ok:
            self.errors.append((daemon.name, what, p.returncode, err_text or text.strip()))
        elif note_stderr and err_text:
            for line in err_text.splitlines():
                self.errors.append((daemon.name, f"{what}, exit 0, on stderr", 0, line))
        return ok, (t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1000, text

    # -- one cold pull ---------------------------------------------------------
    def new_ns(self, daemon, image):
        self.n += 1
        return f"bp{os.getpid()}-{daemon.name}-{image}-{self.n}"

    def on_disk(self, daemon):
        """Blobs, ingests and snapshots the daemon holds on disk (any namespace)."""
        def count(parts):
            try:
                return len(os.listdir(os.path.join(daemon.root, *parts)))
            except FileNotFoundError:
                return 0
        return count(CONTENT_BLOBS), count(CONTENT_INGEST), count(OVERLAY_SNAPSHOTS)

    def pull(self, daemon, image, ref, layers):
        """A timed cold pull in a fresh namespace; returns a sample dict or None."""
        daemon.check_alive()
        disk = self.on_disk(daemon)
        if any(disk):
            self.errors.append((daemon.name, "cold check", "-",
                                f"before a pull: {disk[0]} blobs, {disk[1]} ingests, {disk[2]} snapshots on disk"))
        ns = self.new_ns(daemon, image)
        cpu0 = cpu_ms(daemon.pid)
        ok, ms, client_cpu, _ = self.run_ctr(daemon, ns, "images", "pull", "--plain-http", ref,
                                             what=f"images pull ({image})", note_stderr=True)
        sample = None
        if ok:
            sample = {"ms": ms, "daemon_cpu_ms": cpu_ms(daemon.pid) - cpu0, "ctr_cpu_ms": client_cpu,
                      "rss_mib": tree_rss(daemon.pid)}
            _, _, _, snaps = self.run_ctr(daemon, ns, "snapshots", "ls")
            committed = sum(1 for line in snaps.splitlines()[1:] if line.split()[-1:] == ["Committed"])
            if committed != layers:
                self.errors.append((daemon.name, f"check ({image})", "-",
                                    f"{committed} committed snapshots after the pull, expected {layers}"))
                sample = None
        self.clean_ns(daemon, ns, ref)
        return sample

    def clean_ns(self, daemon, ns, ref):
        """Removes the image and collects its content and snapshots, then the namespace."""
        self.run_ctr(daemon, ns, "images", "rm", "--sync", ref, what="images rm --sync")
        _, _, _, out = self.run_ctr(daemon, ns, "snapshots", "ls")
        left = [line.split()[0] for line in out.splitlines()[1:] if line.strip()]
        if left:
            self.errors.append((daemon.name, "gc", "-", f"{len(left)} snapshots left after images rm --sync"))
            # Children before parents: remove until nothing more goes.
            for _ in range(len(left)):
                for key in left:
                    self.run_ctr(daemon, ns, "snapshots", "rm", key, what="cleanup snapshots rm")
                _, _, _, out = self.run_ctr(daemon, ns, "snapshots", "ls")
                left = [line.split()[0] for line in out.splitlines()[1:] if line.strip()]
                if not left:
                    break
        _, _, _, out = self.run_ctr(daemon, ns, "content", "ls", "-q")
        blobs = out.split()
        if blobs:
            self.errors.append((daemon.name, "gc", "-", f"{len(blobs)} blobs left after images rm --sync"))
            self.run_ctr(daemon, ns, "content", "rm", *blobs, what="cleanup content rm")
        self.run_ctr(daemon, ns, "namespaces", "rm", ns, what="namespaces rm")
        # Garbage collection may finish removing files just after answering.
        deadline = time.monotonic() + 10
        while any(self.on_disk(daemon)) and time.monotonic() < deadline:
            time.sleep(0.02)


# --------------------------------------------------------------------------

IMAGES = ("single", "multi")


def bench_all(args, b, daemons, host, facts, results):
    names = [d.name for d in daemons]
    refs = {img: f"{host}/bench/{img}:latest" for img in IMAGES}
    layers = {img: facts[img]["layers"] for img in IMAGES}
    t_start = time.monotonic()
    results["rss_idle_mib"] = {d.name: tree_rss(d.pid) for d in daemons}

    # First pulls after start: a warm-up, reported apart (lazy imports, caches).
    log("first pull of each image per daemon (warm-up, reported apart) ...")
    first = {img: {} for img in IMAGES}
    for img in IMAGES:
        for d in daemons:
            first[img][d.name] = b.pull(d, img, refs[img], layers[img])
    results["rss_after_first_pulls_mib"] = {d.name: tree_rss(d.pid) for d in daemons}

    log(f"cold pulls: {args.runs} per image per daemon (interleaved, order alternating) ...")
    samples = {img: {n: [] for n in names} for img in IMAGES}
    for i in range(args.runs):
        for img in IMAGES:
            for d in rotate(daemons, i):
                s = b.pull(d, img, refs[img], layers[img])
                if s:
                    samples[img][d.name].append(s)
        log(f"  round {i + 1}/{args.runs} done")
    results["rss_after_pulls_mib"] = {d.name: tree_rss(d.pid) for d in daemons}
    results["hwm_mib"] = {}
    for d in daemons:
        try:
            results["hwm_mib"][d.name] = proc_status(d.pid).get("VmHWM")
        except OSError:
            results["hwm_mib"][d.name] = None
    results["elapsed_s"] = time.monotonic() - t_start
    results["pulls"] = {}
    for img in IMAGES:
        per = {}
        for n in names:
            xs = samples[img][n]
            per[n] = {key: summary([s[key] for s in xs]) for key in ("ms", "daemon_cpu_ms", "ctr_cpu_ms", "rss_mib")}
            f = first[img][n]
            per[n]["first_ms"] = f and f["ms"]
        results["pulls"][img] = per


def report(args, daemons, results, facts):
    names = [d.name for d in daemons]
    p = print
    benchlib.print_head("pull", results["host"],
                        f"{args.runs} cold pulls per image per daemon after one warm-up pull, ", results["elapsed_s"],
                        " (samples are interleaved: other load hits both daemons alike)")
    for n in names:
        p(f"  {n:10} {results['versions'][n]}")
    p(f"  client: {results['versions']['ctr']} for both; registry: docker-registry on 127.0.0.1, plain HTTP")
    for img in IMAGES:
        f = facts[img]
        p(f"  image {img:6}: {f['layers']} gzip layer(s), {f['compressed_bytes'] / 1e6:.1f} MB compressed,"
          f" {f['uncompressed_bytes'] / 1e6:.1f} MB of tar, {f['tar_entries']} tar entries")
    p("  each pull: `ctr images pull --plain-http REF` in a fresh namespace with nothing on disk"
      " (fetch + unpack to overlayfs)")
    p("  cells: median [p25-p75]")
    p()
    other = [n for n in names if n != "ours"][0]
    hdr = f"{'':28}" + "".join(f"{n:>22}" for n in names) + f"{'ours/' + other:>18}"
    p(hdr)
    p("-" * len(hdr))

    def row(label, per, key, nd=0):
        cells = [cell(per[n][key], nd) for n in names]
        r = ratio(per["ours"][key] and per["ours"][key]["median"], per[other][key] and per[other][key]["median"])
        p(f"{label:28}" + "".join(f"{c:>22}" for c in cells) + f"{fmt(r, 2):>18}")
        return r

    summary_ = results["summary"]
    for img in IMAGES:
        per = results["pulls"][img]
        label = f"{img} ({facts[img]['layers']} layer{'s' if facts[img]['layers'] > 1 else ''})"
        summary_[f"{img}_pull"] = row(f"{label}: pull ms", per, "ms")
        row("  daemon CPU ms", per, "daemon_cpu_ms")
        row("  ctr CPU ms", per, "ctr_cpu_ms")
        first = [per[n]["first_ms"] for n in names]
        p(f"{'  first pull after start ms':28}" + "".join(f"{fmt(x, 0):>22}" for x in first)
          + f"{fmt(ratio(first[0], first[1]), 2):>18}")
    p()
    hdr = f"{'daemon RSS MiB':28}" + "".join(f"{n:>22}" for n in names) + f"{'ours/' + other:>18}"
    p(hdr)
    p("-" * len(hdr))
    for key, label in (("rss_idle_mib", "idle, after start"), ("rss_after_first_pulls_mib", "after the first pulls"),
                       ("rss_after_pulls_mib", "after all pulls"), ("hwm_mib", "peak (VmHWM)")):
        per = results[key]
        r = ratio(per.get("ours"), per.get(other))
        if key == "rss_after_pulls_mib":
            summary_["rss_after_pulls"] = r
        p(f"{label:28}" + "".join(f"{fmt(per.get(n)):>22}" for n in names) + f"{fmt(r, 2):>18}")
    p("  RSS: VmRSS of the daemon's process tree, read from /proc with no pull running;"
      " peak: VmHWM of the daemon process")
    p()
    p("summary (targets from the containerd_py issue; this script only reports):")
    p(f"  single-layer pull: ours/{other} = {fmt(summary_['single_pull'], 2)} (target <= 1.0)")
    p(f"  10-layer pull:     ours/{other} = {fmt(summary_['multi_pull'], 2)} (target <= 1.0)")
    p(f"  RSS after pulls:   ours/{other} = {fmt(summary_['rss_after_pulls'], 2)} (target < 1.0)")


def print_errors(b, leaks, interrupted):
    benchlib.print_error_groups(b.errors, _normalize, 300, interrupted)
    benchlib.print_leaks(leaks, "left behind (the bench removed them):")


def _normalize(text):
    return benchlib.normalize(text, (r"bp\d+-[\w.-]+", "<ns>"))


def cleanup(services, tmp):
    leaks = []
    benchlib.ignore_signals()
    for svc in reversed(services):
        left = svc.stop()
        if left:
            leaks.append(f"[{svc.name}] {len(left)} process(es) left in its session: {left[:5]} (killed)")
    mnts = benchlib.mounts_under(tmp)
    if mnts:
        leaks.append(f"{len(mnts)} mount(s) under {tmp}, e.g. {mnts[0]} (unmounted)")
        benchlib.unmount_all(mnts)
    shutil.rmtree(tmp, ignore_errors=True)
    return leaks


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--runs", type=int, help="cold pulls per image per daemon (default 7, --quick 2)")
    ap.add_argument("--quick", action="store_true", help="2 pulls per image per daemon")
    ap.add_argument("--size-mb", type=float, default=50, help="size of the single-layer image (default 50 MB)")
    ap.add_argument("--layers", type=int, default=10, help="layers of the multi-layer image (default 10)")
    ap.add_argument("--layer-mb", type=float, default=5, help="size of each of its layers (default 5 MB)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--python", default=os.path.join(REPO, ".venv", "bin", "python"),
                    help="the Python that runs our daemon (default: .venv/bin/python of this repo)")
    ap.add_argument("--containerd", default=shutil.which("containerd") or "/usr/bin/containerd")
    ap.add_argument("--ctr", default=shutil.which("ctr") or "/usr/bin/ctr")
    ap.add_argument("--registry", default="/usr/bin/docker-registry")
    ap.add_argument("--skopeo", default=shutil.which("skopeo") or "/usr/bin/skopeo")
    args = ap.parse_args()
    args.runs = args.runs or (2 if args.quick else 7)
    if args.json:
        args.json = os.path.abspath(args.json)
    if os.geteuid() != 0:
        sys.exit("pull.py: must run as root")
    for what, path in (("python", args.python), ("containerd", args.containerd), ("ctr", args.ctr),
                       ("docker-registry", args.registry), ("skopeo", args.skopeo)):
        if not os.access(path, os.X_OK):
            sys.exit(f"pull.py: {what} not found at {path} (run: bash scripts/setup.sh)")

    benchlib.interrupt_on(signal.SIGTERM, signal.SIGHUP)

    tmp = tempfile.mkdtemp(prefix="bench-pull-")
    os.chdir("/")
    b = Bench(tmp, args.ctr)
    services = []
    leaks = []
    results = {"host": benchlib.host_facts(),
               "runs": args.runs, "versions": {}, "summary": {}}
    facts = {}
    rc = 0
    try:
        log(f"building images ({args.size_mb:g} MB in 1 layer; {args.layers} x {args.layer_mb:g} MB) ...")
        layout = os.path.join(tmp, "layout")
        facts = build_images(layout, [("single", [int(args.size_mb * 1e6)]),
                                      ("multi", [int(args.layer_mb * 1e6)] * args.layers)])
        results["images"] = facts
        registry = start_registry(tmp, args.registry)
        services.append(registry)
        for img in IMAGES:
            r = subprocess.run([args.skopeo, "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{img}",
                                f"docker://{registry.host}/bench/{img}:latest"], capture_output=True, text=True,
                               timeout=300, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                raise RuntimeError(f"skopeo copy {img}: {r.stderr.strip()}")
        shutil.rmtree(layout)
        daemons = []
        for name in ("ours", "containerd"):
            d = start_daemon(tmp, name, args.python, args.containerd)
            services.append(d)
            daemons.append(d)
        for d in daemons:
            benchlib.wait_ready(args.ctr, d)
        results["versions"] = {
            "ours": "containerd_py " + version([args.python, "-m", "containerd_py.daemon", "--version"]).split(" ", 1)[-1]
            + f" (python {version([args.python, '-V']).split()[-1]})",
            "containerd": version([args.containerd, "--version"]),
            "ctr": version([args.ctr, "--version"])}
        bench_all(args, b, daemons, registry.host, facts, results)
        results["host"]["loadavg_end"] = loadavg()
    except KeyboardInterrupt:
        rc = benchlib.interrupted()
    except Exception:
        rc = benchlib.failed()
        for svc in services:
            if svc.proc.poll() is not None:
                log(f"{svc.name} log:\n{svc.log_tail()}")
    finally:
        leaks = cleanup(services, tmp)
    if rc == 0:
        report(args, daemons, results, facts)
    results["errors"] = benchlib.errors_json(b.errors)
    return benchlib.end_run(rc, results, leaks, lambda leaks, intr: print_errors(b, leaks, intr), args.json)


if __name__ == "__main__":
    sys.exit(main())
