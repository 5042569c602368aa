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
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request

import benchlib
import benchsys
from benchlib import Table, cell, fmt, log, print_target, ratio, rotate

MiB = 1 << 20
MTIME = 1_600_000_000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
CONTENT_BLOBS = ("io.containerd.content.v1.content", "blobs", "sha256")
CONTENT_INGEST = ("io.containerd.content.v1.content", "ingest")
OVERLAY_SNAPSHOTS = ("io.containerd.snapshotter.v1.overlayfs", "snapshots")
IMAGES = ("single", "multi")


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
# The registry

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(tmp, binary, services, name="registry", netns=None, storage=None, port=None):
    """docker-registry on a loopback port (free, unless given), its files in
    tmp/NAME, its storage there too unless given (registries may share one),
    inside netns (a benchsys.Netns) if given; added to services before it
    answers; a Service with .host."""
    workdir = os.path.join(tmp, name)
    os.mkdir(workdir)
    port = port or free_port()
    config = ["version: 0.1", "log:", "  level: warn", "  accesslog:", "    disabled: true", "storage:",
              "  filesystem:", f"    rootdirectory: {storage or workdir + '/data'}", "  delete:", "    enabled: true",
              "http:", f"  addr: 127.0.0.1:{port}", f"  secret: {secrets.token_hex(16)}"]
    with open(f"{workdir}/config.yml", "w") as f:
        f.write("\n".join(config) + "\n")
    argv = [binary, "serve", f"{workdir}/config.yml"]
    svc = benchsys.Service(name, netns.argv(argv) if netns else argv, workdir)
    svc.host = f"127.0.0.1:{port}"
    services.append(svc)

    def answers():
        try:
            urllib.request.urlopen(f"http://{svc.host}/v2/", timeout=5).close()
        except urllib.error.HTTPError:
            pass
        except OSError:
            return False
        return True
    deadline = time.monotonic() + benchsys.START_DEADLINE
    while not (netns.call(answers) if netns else answers()):
        svc.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"docker-registry did not answer:\n{svc.log_tail()}")
        time.sleep(0.05)
    return svc


# --------------------------------------------------------------------------

class PullBench(benchlib.Bench):
    name = "pull"
    counts = {"runs": (7, 2, "cold pulls per image per daemon")}
    error_subs = ((r"bp\d+-[\w.-]+", "<ns>"),)
    error_width = 300
    tools = benchlib.CONTAINERD_TOOLS + benchlib.REGISTRY_TOOLS

    @classmethod
    def add_options(cls, ap):
        ap.add_argument("--size-mb", type=float, default=50, help="size of the single-layer image (default 50 MB)")
        ap.add_argument("--layers", type=int, default=10, help="layers of the multi-layer image (default 10)")
        ap.add_argument("--layer-mb", type=float, default=5, help="size of each of its layers (default 5 MB)")

    def __init__(self, args):
        super().__init__(args)
        self.n = 0
        self.results["runs"] = args.runs

    def setup(self):
        a = self.args
        log(f"building images ({a.size_mb:g} MB in 1 layer; {a.layers} x {a.layer_mb:g} MB) ...")
        layout = os.path.join(self.tmp, "layout")
        self.facts = self.results["images"] = build_images(layout, [("single", [int(a.size_mb * 1e6)]),
                                                                    ("multi", [int(a.layer_mb * 1e6)] * a.layers)])
        registry = start_registry(self.tmp, a.registry, self.services)
        for img in IMAGES:
            r = subprocess.run([a.skopeo, "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{img}",
                                f"docker://{registry.host}/bench/{img}:latest"], capture_output=True, text=True,
                               timeout=300, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                raise RuntimeError(f"skopeo copy {img}: {r.stderr.strip()}")
        shutil.rmtree(layout)
        self.refs = {img: f"{registry.host}/bench/{img}:latest" for img in IMAGES}
        self.daemons = [benchsys.start_containerd_py(self.tmp, a.python, benchlib.REPO),
                        benchsys.start_containerd(self.tmp, a.containerd)]
        self.services += self.daemons
        for d in self.daemons:
            benchsys.wait_ready(a.ctr, d)
        v = self.results["versions"] = benchsys.daemon_versions(a.python, a.containerd, a.ctr)
        v["ours"] = "containerd_py " + v["ours"].split(" ", 1)[-1]

    def ctr(self, daemon, ns, *args, what=None, note_stderr=False):
        """One ctr command against daemon in namespace ns; a benchlib.Result."""
        argv = benchsys.ctr_argv(self.args.ctr, daemon, ns, *args)
        return self.command(daemon.name, argv, what or " ".join(args[:2]), note_stderr)

    # -- one cold pull ---------------------------------------------------------
    def on_disk(self, daemon):
        """Blobs, ingests and snapshots the daemon holds on disk (any namespace)."""
        def count(parts):
            try:
                return len(os.listdir(os.path.join(daemon.root, *parts)))
            except FileNotFoundError:
                return 0
        return count(CONTENT_BLOBS), count(CONTENT_INGEST), count(OVERLAY_SNAPSHOTS)

    def pull(self, daemon, image):
        """A timed cold pull in a fresh namespace; returns a sample dict or None."""
        daemon.check_alive()
        disk = self.on_disk(daemon)
        if any(disk):
            self.error(daemon.name, "cold check", "-",
                       f"before a pull: {disk[0]} blobs, {disk[1]} ingests, {disk[2]} snapshots on disk")
        self.n += 1
        ns, ref = f"bp{os.getpid()}-{daemon.name}-{image}-{self.n}", self.refs[image]
        cpu0 = benchsys.cpu_ms(daemon.pid)
        r = self.ctr(daemon, ns, "images", "pull", "--plain-http", ref, what=f"images pull ({image})",
                     note_stderr=True)
        sample = None
        if r.ok:
            sample = {"ms": r.ms, "daemon_cpu_ms": benchsys.cpu_ms(daemon.pid) - cpu0, "ctr_cpu_ms": r.cpu_ms,
                      "rss_mib": benchsys.tree_rss(daemon.pid)}
            snaps = self.ctr(daemon, ns, "snapshots", "ls").out
            committed = sum(1 for line in snaps.splitlines()[1:] if line.split()[-1:] == ["Committed"])
            if committed != self.facts[image]["layers"]:
                self.error(daemon.name, f"check ({image})", "-", f"{committed} committed snapshots after the pull,"
                           f" expected {self.facts[image]['layers']}")
                sample = None
        self.clean_ns(daemon, ns, ref)
        return sample

    def snapshots(self, daemon, ns):
        return [line.split()[0] for line in self.ctr(daemon, ns, "snapshots", "ls").out.splitlines()[1:]
                if line.strip()]

    def clean_ns(self, daemon, ns, ref):
        """Removes the image and collects its content and snapshots, then the namespace."""
        self.ctr(daemon, ns, "images", "rm", "--sync", ref, what="images rm --sync")
        left = self.snapshots(daemon, ns)
        if left:
            self.error(daemon.name, "gc", "-", f"{len(left)} snapshots left after images rm --sync")
            # Children before parents: remove until nothing more goes.
            for _ in range(len(left)):
                for key in left:
                    self.ctr(daemon, ns, "snapshots", "rm", key, what="cleanup snapshots rm")
                left = self.snapshots(daemon, ns)
                if not left:
                    break
        blobs = self.ctr(daemon, ns, "content", "ls", "-q").out.split()
        if blobs:
            self.error(daemon.name, "gc", "-", f"{len(blobs)} blobs left after images rm --sync")
            self.ctr(daemon, ns, "content", "rm", *blobs, what="cleanup content rm")
        self.ctr(daemon, ns, "namespaces", "rm", ns, what="namespaces rm")
        # Garbage collection may finish removing files just after answering.
        deadline = time.monotonic() + 10
        while any(self.on_disk(daemon)) and time.monotonic() < deadline:
            time.sleep(0.02)

    # -- the measurements ---------------------------------------------------------
    def measure(self):
        daemons, R = self.daemons, self.results
        names = [d.name for d in daemons]
        R["rss_idle_mib"] = {d.name: benchsys.tree_rss(d.pid) for d in daemons}
        # First pulls after start: a warm-up, reported apart (lazy imports, caches).
        log("first pull of each image per daemon (warm-up, reported apart) ...")
        first = {img: {d.name: self.pull(d, img) for d in daemons} for img in IMAGES}
        R["rss_after_first_pulls_mib"] = {d.name: benchsys.tree_rss(d.pid) for d in daemons}
        log(f"cold pulls: {self.args.runs} per image per daemon (interleaved, order alternating) ...")
        samples = {img: {n: [] for n in names} for img in IMAGES}
        for i in range(self.args.runs):
            for img in IMAGES:
                for d in rotate(daemons, i):
                    samples[img][d.name].append(self.pull(d, img))
            log(f"  round {i + 1}/{self.args.runs} done")
        R["rss_after_pulls_mib"] = {d.name: benchsys.tree_rss(d.pid) for d in daemons}
        R["hwm_mib"] = {}
        for d in daemons:
            try:
                R["hwm_mib"][d.name] = benchsys.status_mib(d.pid, "VmHWM").get("VmHWM")
            except OSError:
                R["hwm_mib"][d.name] = None
        R["pulls"] = {img: {n: {key: self.summary([s[key] for s in samples[img][n] if s])
                                for key in ("ms", "daemon_cpu_ms", "ctr_cpu_ms", "rss_mib")} for n in names}
                      for img in IMAGES}
        for img in IMAGES:
            for n in names:
                R["pulls"][img][n]["first_ms"] = first[img][n] and first[img][n]["ms"]

    def report(self):
        a, R, facts = self.args, self.results, self.facts
        names = [d.name for d in self.daemons]
        benchlib.print_head("pull", R["host"], f"{a.runs} cold pulls per image per daemon after one warm-up pull, ",
                            R["elapsed_s"], " (samples are interleaved: other load hits both daemons alike)")
        for n in names:
            print(f"  {n:10} {R['versions'][n]}")
        print(f"  client: {R['versions']['ctr']} for both; registry: docker-registry on 127.0.0.1, plain HTTP")
        for img in IMAGES:
            f = facts[img]
            print(f"  image {img:6}: {f['layers']} gzip layer(s), {f['compressed_bytes'] / 1e6:.1f} MB compressed,"
                  f" {f['uncompressed_bytes'] / 1e6:.1f} MB of tar, {f['tar_entries']} tar entries")
        print("  each pull: `ctr images pull --plain-http REF` in a fresh namespace with nothing on disk"
              " (fetch + unpack to overlayfs)")
        print("  cells: median [p25-p75]")
        print()
        other = names[1]
        table = Table("", 28, names, 22, ["ours/" + other], 18)
        summary = R["summary"]
        for img in IMAGES:
            per = R["pulls"][img]
            layers = facts[img]["layers"]
            for key, label in (("ms", f"{img} ({layers} layer{'s' if layers > 1 else ''}): pull ms"),
                               ("daemon_cpu_ms", "  daemon CPU ms"), ("ctr_cpu_ms", "  ctr CPU ms")):
                r = benchlib.ours_over({n: per[n][key] for n in names}, [other])
                table.row(label, [cell(per[n][key], 0) for n in names], r)
                if key == "ms":
                    summary[f"{img}_pull"] = r[0]
            first = [per[n]["first_ms"] for n in names]
            table.row("  first pull after start ms", [fmt(x, 0) for x in first], [ratio(first[0], first[1])])
        print()
        table = Table("daemon RSS MiB", 28, names, 22, ["ours/" + other], 18)
        for key, label in (("rss_idle_mib", "idle, after start"), ("rss_after_first_pulls_mib", "after the first pulls"),
                           ("rss_after_pulls_mib", "after all pulls"), ("hwm_mib", "peak (VmHWM)")):
            per = R[key]
            r = ratio(per.get("ours"), per.get(other))
            if key == "rss_after_pulls_mib":
                summary["rss_after_pulls"] = r
            table.row(label, [fmt(per.get(n)) for n in names], [r])
        print("  RSS: VmRSS of the daemon's process tree, read from /proc with no pull running;"
              " peak: VmHWM of the daemon process")
        print()
        print("summary (targets from the containerd_py issue; this script only reports):")
        print_target("single-layer pull:", other, summary["single_pull"], "<= 1.0")
        print_target("10-layer pull:    ", other, summary["multi_pull"], "<= 1.0")
        print_target("RSS after pulls:  ", other, summary["rss_after_pulls"], "< 1.0")


if __name__ == "__main__":
    sys.exit(PullBench.main(__doc__))
