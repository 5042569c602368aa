"""The parser against real dockerd 20.10's legacy builder: the same
Dockerfiles, the same parse errors, the same `Step N/M : ...` lines, and
the labels its substitution gives (a LABEL step runs no container)."""
import os
import subprocess

import pytest

from engine.builder.buildargs import BuildArgs, declare_meta_args
from engine.builder.dockerfile import parse
from test_builder_dockerfile_words import last_step_expanded

pytestmark = pytest.mark.root

BUILD_ARGS = {"HTTP_PROXY": "hp", "ba": "fromcli"}


def dockerd_build(dockerd, tmp_path, text: str, tag: str, *flags: str):
    (tmp_path / "Dockerfile").write_text(text)
    argv = ["/usr/bin/docker", "-H", f"unix://{dockerd.socket}", "build", *flags, "-t", tag, str(tmp_path)]
    for key, value in BUILD_ARGS.items():
        argv[-1:-1] = ["--build-arg", f"{key}={value}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, DOCKER_BUILDKIT="0"))


@pytest.mark.parametrize("text", [
    "FROM busybox\nLABEL a=b\nRUNN x\n",
    "FROM busybox\nENV =x\n",
    "FROM busybox\nLABEL x\n",
    "# escape=x\nFROM busybox\n",
    "FROM busybox\nHEALTHCHECK --interval=0s CMD true\n",
    "FROM busybox\nRUN --network=host true\n",
    "FROM busybox AS 1x\n",
    'FROM busybox\nCMD ["a", 1]\n',
])
def test_parse_errors_as_dockerd(dockerd, tmp_path, text):
    built = dockerd_build(dockerd, tmp_path, text, "parse-error")
    with pytest.raises(Exception) as err:
        parse(text)
    assert built.returncode == 1
    assert built.stderr.strip().splitlines()[-1] == f"Error response from daemon: {err.value}"


def test_steps_and_substitution_as_dockerd(dockerd, tmp_path):
    text = ("ARG ma=meta\nARG tag=latest\nFROM busybox:$tag\nARG ma\nARG ba\nENV u=x e= \\\n# inside\n  P=/p\n"
            "LABEL r1=${u:-d} r2=${u:+p} r3=${n:-d} r4=${e:+p} r5=\\$u r6='$u' r7=\"$u\" r8=a\\ b r9=$1x \\\n"
            "      l1=$ma l2=$ba l3=$HTTP_PROXY l4=${http_proxy:-none} l5=$tag r10=\"a\\qb\" r11=${u:?}\n")
    built = dockerd_build(dockerd, tmp_path, text, "parse-steps")
    assert built.returncode == 0, built.stderr
    try:
        labels = dockerd.inspect("parse-steps")["Config"]["Labels"]
    finally:
        dockerd.docker("rmi", "parse-steps")
    parsed = parse(text)
    [stage] = parsed.stages
    ours = [str(step) for step in (*parsed.meta_args, stage, *stage.instructions)]
    steps = [line for line in built.stdout.splitlines() if line.startswith("Step ")]
    assert steps == [f"Step {n}/{parsed.total_steps} : {step}" for n, step in enumerate(ours, 1)]

    args = BuildArgs(BUILD_ARGS)
    declare_meta_args(parsed.meta_args, args, parsed.escape)
    label, _ = last_step_expanded(parsed, args)
    assert dict(label.pairs) == labels


def test_target_as_dockerd(dockerd, tmp_path):
    text = "ARG x\nFROM busybox AS Base\nLABEL a=b\nFROM base AS next\nLABEL c=d\nFROM next\nLABEL e=f\n"
    missing = dockerd_build(dockerd, tmp_path, text, "parse-target", "--target", "nope")
    with pytest.raises(Exception) as err:
        parse(text).up_to("nope")
    assert missing.stderr.strip().splitlines()[-1] == f"Error response from daemon: {err.value}"
    built = dockerd_build(dockerd, tmp_path, text, "parse-target", "--target", "BASE")
    dockerd.docker("rmi", "parse-target")
    steps = [line for line in built.stdout.splitlines() if line.startswith("Step ")]
    assert steps[-1] == f"Step 3/{parse(text).up_to('BASE').total_steps} : LABEL a=b"
