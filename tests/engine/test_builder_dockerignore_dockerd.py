""".dockerignore against the docker CLI 20.10 and dockerd: what a
`COPY . /ctx/` of a context receives is what our patterns keep, the CLI's
re-inclusion and the daemon's removal of Dockerfile and .dockerignore included."""
import io
import os
import subprocess
import tarfile

import pytest

from engine.builder.dockerignore import PatternMatcher, build_files_to_remove, keep_build_files, read_patterns

pytestmark = pytest.mark.root

FILES = ["a", "b.txt", "keep/k.txt", "keep/k.md", "sub/x.txt", "sub/deep/y", "deep/er/z.txt", "c.md", "README.md",
         "x$y", "sub.md"]


@pytest.mark.parametrize("ignore", [
    "*\n!a\n",
    "**/*.txt\n!keep/*.txt\nsub\n",
    "# c\n/c.md\n*.md\n!README*.md\n.dockerignore\n",
    "Dockerfile\n!sub/deep\n",
    "deep/*/z.txt\n./keep\n!keep/k.md\n",
])
def test_context_as_dockerd_sees_it(dockerd, tmp_path, ignore):
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY . /ctx/\n")
    (tmp_path / ".dockerignore").write_text(ignore)
    built = subprocess.run(["/usr/bin/docker", "-H", f"unix://{dockerd.socket}", "build", "-q", "-t", "ignored",
                            str(tmp_path)], capture_output=True, text=True, env=dict(os.environ, DOCKER_BUILDKIT="0"))
    assert built.returncode == 0, built.stderr
    cid = dockerd.docker("create", "ignored").stdout.strip()
    try:
        exported = subprocess.run(["/usr/bin/docker", "-H", f"unix://{dockerd.socket}", "export", cid],
                                  capture_output=True, check=True).stdout
    finally:
        dockerd.docker("rm", cid)
        dockerd.docker("rmi", "ignored")
    received = sorted(m.name[len("ctx/"):] for m in tarfile.open(fileobj=io.BytesIO(exported))
                      if m.name.startswith("ctx/") and m.isfile())

    patterns = read_patterns(ignore)
    packed = PatternMatcher(keep_build_files(patterns, "Dockerfile"))
    sent = [name for name in [*FILES, "Dockerfile", ".dockerignore"] if not packed.matches(name)]
    assert received == sorted(set(sent) - set(build_files_to_remove(patterns, "Dockerfile")))
