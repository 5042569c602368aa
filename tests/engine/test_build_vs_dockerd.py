"""`docker build` by engine-py against dockerd 20.10's legacy builder: the
same Dockerfiles and contexts, through the docker CLI 28 (DOCKER_BUILDKIT=0)
and 20.10, and what a user sees compared with IDs normalised: the exit code
and the lines printed, the image's config and `docker history`, what a
container of it prints, which steps hit the cache on a second build and
after touching or changing one file, what a failed build leaves behind.

Each test runs twice: `oracle` builds with dockerd alone and checks the facts
the scenario is there for (so the scenario is proven against the real
thing), `ours` builds with engine-py and compares every section of what it
saw with dockerd's (one assertion naming all the sections that differ).
IDs (containers, images) become <id1>, <id2>, ... in order of first
appearance within a scenario, so a cache hit shows the first build's ID and
`Removing intermediate container` the one that `Running in` named. The
checksums of COPY/ADD in history are compared apart (section "checksums").
"""
import difflib
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile

import pytest

from engine_daemon import DOCKER_CLIS

pytestmark = pytest.mark.root

CLIS = ("28", "20.10")
MTIME = 1_600_000_000  # every context file's, so two contexts made alike send the same bytes
CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
               "Healthcheck", "StopSignal", "Shell", "OnBuild")
HEX_ID = re.compile(r"(?<![:\w])(?:sha256:)?([0-9a-f]{64}|[0-9a-f]{12})(?![0-9a-f])")
CHECKSUM = re.compile(r"(file|dir|multi):([0-9a-f]{64})\b")   # dockerd writes "--chown=u:gfile:..."


class Ids:
    """IDs as <id1>, <id2>, ... in order of first appearance (keyed by their
    first 12 digits, so a short and a full ID are one)."""

    def __init__(self):
        self.names: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        return HEX_ID.sub(lambda m: self.names.setdefault(m.group(1)[:12], f"<id{len(self.names) + 1}>"), text)


class Side:
    """One daemon as the CLI meets it in a scenario: its docker commands and what they showed."""

    def __init__(self, daemon, cli: str):
        self.daemon, self.cli = daemon, cli
        self.ids = Ids()
        self.view: dict[str, object] = {}

    def docker(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER_CONFIG": f"{self.daemon.workdir}/docker-config"}
        env.pop("DOCKER_HOST", None)
        return subprocess.run([DOCKER_CLIS[self.cli], "-H", f"unix://{self.daemon.socket}", *args],
                              capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=timeout)

    def build(self, key: str, context, *flags: str) -> subprocess.CompletedProcess:
        """`docker build FLAGS CONTEXT`; its exit code and lines (IDs normalised) as view[key]."""
        r = self.docker("build", *flags, str(context))
        self.view[key] = {"exit": r.returncode, "stdout": self.lines(r.stdout), "stderr": self.lines(r.stderr)}
        return r

    def lines(self, text: str) -> list[str]:
        return [self.ids(line.rstrip()) for line in text.splitlines() if line.strip()]

    def image(self, key: str, ref: str) -> None:
        """The image's config (and Author) and its history as view[key]; COPY/ADD checksums apart."""
        inspected = self.docker("image", "inspect", ref)
        assert inspected.returncode == 0, inspected.stderr
        info = json.loads(inspected.stdout)[0]
        history = self.docker("history", "--no-trunc", "--format", "{{.ID}}\t{{.CreatedBy}}\t{{.Size}}", ref)
        assert history.returncode == 0, history.stderr
        rows, sums = [], []
        for line in history.stdout.splitlines():
            image, created_by, size = line.split("\t")
            sums += [m.group(0) for m in CHECKSUM.finditer(created_by)]
            rows.append([self.ids(image), self.ids(CHECKSUM.sub(r"\1:<sum>", created_by)),
                         "0B" if size == "0B" else "non-zero"])
        self.view[key] = {"config": {k: info["Config"].get(k) for k in CONFIG_KEYS}, "author": info["Author"],
                          "history": rows}
        self.view.setdefault("checksums", {})[key] = sums

    def run(self, key: str, ref: str, *args: str) -> None:
        """What `docker run --rm --network none REF ARGS` prints, as view[key]."""
        r = self.docker("run", "--rm", "--network", "none", ref, *args)
        self.view[key] = {"exit": r.returncode, "stdout": self.lines(r.stdout), "stderr": self.lines(r.stderr)}

    def containers(self) -> dict[str, str]:
        """{ID: command} of every container."""
        listed = self.docker("ps", "-a", "--no-trunc", "--format", "{{.ID}}\t{{.Command}}").stdout
        return dict(line.split("\t", 1) for line in listed.splitlines())

    def remove_images(self, *refs: str) -> None:
        self.docker("rmi", "-f", *refs)


def make_context(root, files: dict[str, bytes | str]) -> None:
    """Files (text or bytes) under root, parents made, every time MTIME."""
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    set_times(root)


def set_times(root) -> None:
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            os.utime(os.path.join(top, name), (MTIME, MTIME))
    os.utime(root, (MTIME, MTIME))


def tar_of(root, members: dict[str, str]) -> bytes:
    """A plain tar of text files (ADD extracts a local archive), fixed times."""
    path = root / "archive-src.tar"
    with tarfile.open(path, "w") as tf:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), MTIME, 0o640
            tf.addfile(info, io.BytesIO(data))
    data = path.read_bytes()
    path.unlink()
    return data


@pytest.fixture(params=CLIS, ids=lambda v: f"cli{v}")
def cli(request):
    return request.param


@pytest.fixture(params=("oracle", "ours"))
def side(request):
    return request.param


_views: dict[tuple, dict] = {}   # (daemon fixture, scenario, cli) -> its view, made once per run


def view_of(request, tmp_path_factory, daemon: str, cli: str, scenario) -> dict:
    """What the scenario showed on the daemon (the fixture's name), made once per run."""
    key = (daemon, scenario.__name__, cli)
    if key not in _views:
        side = Side(request.getfixturevalue(daemon), cli)
        run_scenario(scenario, side, tmp_path_factory.mktemp(f"{scenario.__name__}-{daemon}"))
        _views[key] = side.view
    return _views[key]


def observed(request, tmp_path_factory, side: str, cli: str, scenario) -> dict:
    """dockerd's view of scenario(Side, context dir); for `ours`, also engine-py's,
    and every section but the checksums (test_copy_checksums_as_dockerd) that
    differs from dockerd's is an assertion failure."""
    theirs = view_of(request, tmp_path_factory, "dockerd", cli, scenario)
    if side == "oracle":
        return theirs
    ours = view_of(request, tmp_path_factory, "engine_py", cli, scenario)
    differing = sorted(k for k in {*theirs, *ours} if k != "checksums" and ours.get(k) != theirs.get(k))
    assert not differing, "\n".join(section_diff(k, theirs.get(k), ours.get(k)) for k in differing)
    return ours


def section_diff(key: str, theirs, ours) -> str:
    """A unified diff of one section's JSON, dockerd's (-) to engine-py's (+)."""
    lines = [json.dumps(v, indent=1, sort_keys=True).splitlines() for v in (theirs, ours)]
    return "\n".join(difflib.unified_diff(*lines, f"{key} (dockerd)", f"{key} (engine-py)", lineterm="", n=2))


def run_scenario(scenario, side: Side, ctx) -> None:
    """scenario(side, ctx); then the containers its builds left (a failed RUN's)
    removed, and the images it left (a rebuild's old chain): the daemons serve other tests."""
    before = side.containers()
    try:
        scenario(side, ctx)
    finally:
        left = side.containers().keys() - before.keys()
        if left:
            side.docker("rm", "-f", *left)
        side.docker("image", "prune", "-f")


def steps_cached(build: dict) -> list[str]:
    """The Step lines of a build output each followed by whether it hit the cache."""
    out, lines = [], build["stdout"]
    for i, line in enumerate(lines):
        if line.startswith("Step "):
            out.append(f"{line} -> {'cache' if i + 1 < len(lines) and lines[i + 1] == ' ---> Using cache' else 'run'}")
    return out


# --------------------------------------------------------------------------
# Every instruction, the cache, ONBUILD

EVERY_INSTRUCTION = r"""FROM busybox
MAINTAINER Someone <someone@example.com>
LABEL org.example.a=b "with space"="a value" multi=one \
      two=2
ENV A=1 B="two words"
ENV C three words
ARG V=default
ARG W
RUN echo "v=$V w=$W a=$A b=$B c=$C" | tee /args
RUN ["/bin/sh", "-c", "echo exec form $A"]
WORKDIR /app
WORKDIR sub
COPY --chown=user:user file.txt ./
COPY --chown=1000 *.conf /conf/
COPY dir /dirdest/
COPY dir/ /dirdest2
ADD archive.tar /unpacked/
ADD --chown=nobody:nogroup plain.txt /plain/
EXPOSE 80 443/udp 8080/tcp
VOLUME ["/data", "/logs"]
VOLUME /more
USER user
RUN id && pwd
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=2 CMD ["true"]
SHELL ["/bin/sh", "-ec"]
RUN echo "shell form under SHELL $C"
ONBUILD RUN echo "triggered in $(pwd)"
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /args; stat -c '%n %u:%g %a %s' /app/sub/file.txt $(find /conf /dirdest /dirdest2 /unpacked /plain | sort); id"]
"""


def every_instruction(side: Side, ctx) -> None:
    make_context(ctx, {"Dockerfile": EVERY_INSTRUCTION, "file.txt": "file\n", "a.conf": "a\n", "b.conf": "bb\n",
                       "c.txt": "not copied\n", "dir/y": "y\n", "dir/sub/x": "x\n", "plain.txt": "plain\n",
                       "archive.tar": tar_of(ctx.parent, {"t/one": "one\n", "t/two": "two\n"})})
    tag = f"bvd-every-{side.cli}"
    child = f"bvd-child-{side.cli}"
    try:
        side.build("first build", ctx, "--no-cache", "--build-arg", "W=fromcli", "-t", tag)
        side.image("image", tag)
        side.run("container", tag)
        side.build("second build", ctx, "--build-arg", "W=fromcli", "-t", tag)
        os.utime(ctx / "dir" / "y", (MTIME + 60, MTIME + 60))
        side.build("after touching dir/y", ctx, "--build-arg", "W=fromcli", "-t", tag)
        (ctx / "dir" / "y").write_text("changed\n")
        side.build("after changing dir/y", ctx, "--build-arg", "W=fromcli", "-t", tag)
        side.build("another build arg", ctx, "--build-arg", "W=other", "-t", tag)
        (ctx / "Dockerfile").write_text(f"FROM {tag}\nRUN echo child\n")
        side.build("ONBUILD build", ctx, "--no-cache", "-t", child)
        side.image("ONBUILD image", child)
        side.run("ONBUILD container", child, "echo from child; pwd; id")
    finally:
        side.remove_images(child, tag)


def test_every_instruction(request, tmp_path_factory, side, cli):
    view = observed(request, tmp_path_factory, side, cli, every_instruction)
    first = view["first build"]
    assert first["exit"] == 0 and "v=default w=fromcli a=1 b=two words c=three words" in first["stdout"]
    assert "exec form 1" in first["stdout"] and "shell form under SHELL three words" in first["stdout"]
    assert first["stdout"][-1] == f"Successfully tagged bvd-every-{cli}:latest"
    config = view["image"]["config"]
    assert config["User"] == "user" and config["WorkingDir"] == "/app/sub" and config["StopSignal"] == "SIGUSR1"
    assert config["OnBuild"] == ['RUN echo "triggered in $(pwd)"'] and config["Shell"] == ["/bin/sh", "-ec"]
    assert view["image"]["author"] == "Someone <someone@example.com>"
    assert view["container"]["stdout"][0] == "v=default w=fromcli a=1 b=two words c=three words"
    cached = [s.endswith("cache") for s in steps_cached(view["second build"])]
    assert cached == [False] + [True] * (len(cached) - 1)   # FROM never says "Using cache"
    assert steps_cached(view["after touching dir/y"]) == steps_cached(view["second build"])
    changed = steps_cached(view["after changing dir/y"])
    first_run = next(i for i, s in enumerate(changed) if s.endswith("run") and i)
    assert changed[first_run].startswith("Step 14/") and "COPY dir /dirdest/" in changed[first_run]
    assert "# Executing 1 build trigger" in view["ONBUILD build"]["stdout"]
    assert "triggered in /app/sub" in view["ONBUILD build"]["stdout"]


# --------------------------------------------------------------------------
# Multi-stage: COPY --from a stage (by name and number) and an image, --target

MULTI_STAGE = """ARG BASE=busybox
FROM $BASE AS base
RUN echo base > /base
FROM base AS one
RUN echo one > /one
FROM busybox AS two
WORKDIR /w
RUN echo two > two
FROM busybox
COPY --from=one /one /base /got/
COPY --from=two /w/two /got/
COPY --from=busybox /etc/group /got/group
COPY --from=0 /base /got/zero
CMD ["sh", "-c", "cat /got/*; ls /got"]
"""


def multi_stage(side: Side, ctx) -> None:
    make_context(ctx, {"Dockerfile": MULTI_STAGE})
    tag = f"bvd-multi-{side.cli}"
    try:
        side.build("build", ctx, "--no-cache", "-t", tag)
        side.image("image", tag)
        side.run("container", tag)
        side.build("--target two", ctx, "--target", "two", "-t", tag)
        side.image("target image", tag)
        side.run("target container", tag, "cat", "two")
    finally:
        side.remove_images(tag)


def test_multi_stage(request, tmp_path_factory, side, cli):
    view = observed(request, tmp_path_factory, side, cli, multi_stage)
    assert view["build"]["exit"] == 0
    got = view["container"]["stdout"]   # cat /got/* (base, group's 4 lines, one, two, zero), then ls /got
    assert got[:2] == ["base", "root:x:0:"] and got[5:] == ["one", "two", "base", "base", "group", "one", "two", "zero"]
    assert view["target image"]["config"]["WorkingDir"] == "/w"
    assert view["target container"]["stdout"] == ["two"]
    assert steps_cached(view["--target two"])[-1] == "Step 8/8 : RUN echo two > two -> cache"


# --------------------------------------------------------------------------
# .dockerignore; --label, an unused --build-arg, -q

DOCKERIGNORE = "# comment\n*.log\n**/*.tmp\nsecret/\n!keep.log\nDockerfile\n.dockerignore\n"


def dockerignore(side: Side, ctx) -> None:
    make_context(ctx, {"Dockerfile": 'FROM busybox\nCOPY . /ctx\nCMD ["sh", "-c", "find /ctx | sort"]\n',
                       ".dockerignore": DOCKERIGNORE, "a.log": "a", "keep.log": "k", "x/y.tmp": "y",
                       "x/deep/z.tmp": "z", "x/z.txt": "z", "secret/s": "s", "top.txt": "t"})
    tag = f"bvd-ignore-{side.cli}"
    try:
        side.build("build", ctx, "-t", tag, "--build-arg", "UNUSED=1", "--label", "via=cli")
        side.image("image", tag)
        side.run("container", tag)
        side.build("quiet build", ctx, "-q", "-t", tag, "--build-arg", "UNUSED=1", "--label", "via=cli")
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo to stderr >&2; exit 2\n")
        side.build("quiet failing build", ctx, "-q")
    finally:
        side.remove_images(tag)


def test_dockerignore_quiet_labels(request, tmp_path_factory, side, cli):
    view = observed(request, tmp_path_factory, side, cli, dockerignore)
    assert view["image"]["config"]["Labels"] == {"via": "cli"}
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in view["build"]["stdout"]
    assert view["quiet build"]["stdout"] == [view["build"]["stdout"][-2].split()[-1]]   # the ID alone
    quiet_failing = view["quiet failing build"]   # -q: the whole log on stderr after all
    assert quiet_failing["stdout"] == [] and "\x1b[91mto stderr" in quiet_failing["stderr"]
    assert view["container"]["stdout"] == ["/ctx", "/ctx/keep.log", "/ctx/top.txt", "/ctx/x", "/ctx/x/deep",
                                           "/ctx/x/z.txt"]


# --------------------------------------------------------------------------
# Failures: a RUN (shell and exec form, --rm and --force-rm), a parse error,
# a missing COPY source, an unknown --target

def failures(side: Side, ctx) -> None:
    before = side.containers()
    failing = "FROM busybox\nRUN echo before\nRUN exit 7\nRUN echo never\n"
    make_context(ctx, {"Dockerfile": failing, "f": "f"})
    side.build("failing RUN", ctx, "--no-cache")
    left = side.containers().keys() - before.keys()
    side.view["containers left by --rm"] = len(left)
    side.build("failing RUN, --force-rm", ctx, "--no-cache", "--force-rm")
    side.view["containers left by --force-rm"] = len(side.containers().keys() - before.keys() - left)
    cases = {"exec form": 'FROM busybox\nRUN ["sh", "-c", "exit 3"]\n',
             "parse error": "FROM busybox\nLABEL a=b\nRUNN x\n",
             "missing COPY source": "FROM busybox\nCOPY nope /\n",
             "unknown chown group": "FROM busybox\nCOPY --chown=nobody f /\n",
             "unknown target": "FROM busybox AS a\nRUN true\n"}
    for key, text in cases.items():
        (ctx / "Dockerfile").write_text(text)
        side.build(key, ctx, *(["--target", "b"] if key == "unknown target" else ["--no-cache"]))


def test_failures(request, tmp_path_factory, side, cli):
    view = observed(request, tmp_path_factory, side, cli, failures)
    run = view["failing RUN"]
    assert run["exit"] == 7 and "before" in run["stdout"] and "never" not in run["stdout"]
    assert run["stderr"][-1] == "The command '/bin/sh -c exit 7' returned a non-zero code: 7"
    assert view["exec form"]["stderr"][-1] == "The command 'sh -c exit 3' returned a non-zero code: 3"
    assert view["parse error"]["stderr"][-1] == \
        "Error response from daemon: dockerfile parse error line 3: unknown instruction: RUNN"
    assert view["missing COPY source"]["stderr"][-1].startswith("COPY failed: file not found in build context")
    assert view["unknown chown group"]["stderr"][-1].endswith("no such group: nobody")
    assert view["unknown target"]["stderr"][-1] == \
        "Error response from daemon: failed to reach build target b in Dockerfile"
    assert view["containers left by --force-rm"] == 0
    assert view["containers left by --rm"] == 1   # dockerd keeps the failed step's container without --force-rm


# --------------------------------------------------------------------------
# A 100 MB context

def big_context(side: Side, ctx) -> None:
    with open(ctx / "big.bin", "wb") as f:
        for _ in range(BIG_MIB):
            f.write(MIB)
    make_context(ctx, {"Dockerfile": 'FROM busybox\nCOPY big.bin /big.bin\nCMD ["md5sum", "/big.bin"]\n'})
    tag = f"bvd-big-{side.cli}"
    try:
        side.build("build", ctx, "--no-cache", "-t", tag)
        side.image("image", tag)
        side.run("container", tag)
    finally:
        side.remove_images(tag)


MIB, BIG_MIB = bytes(range(256)) * 4096, 100   # big.bin: 100 MiB, the same bytes each run


def test_100mb_context(request, tmp_path_factory, side):
    view = observed(request, tmp_path_factory, side, "28", big_context)
    assert view["build"]["stdout"][0] == "Sending build context to Docker daemon  104.9MB"
    md5 = hashlib.md5()
    for _ in range(BIG_MIB):
        md5.update(MIB)
    assert view["container"]["stdout"] == [f"{md5.hexdigest()}  /big.bin"]


# --------------------------------------------------------------------------
# The checksums of COPY and ADD in history (file:, dir:, multi:), as dockerd's

@pytest.mark.parametrize("scenario", [every_instruction, multi_stage, dockerignore])
def test_copy_checksums_as_dockerd(request, tmp_path_factory, cli, scenario):
    """The same context through the same CLI: the same checksums (the views
    of the tests above, when they ran first)."""
    theirs = view_of(request, tmp_path_factory, "dockerd", cli, scenario)["checksums"]
    assert any(theirs.values())
    assert view_of(request, tmp_path_factory, "engine_py", cli, scenario)["checksums"] == theirs
