"""Builds through docker-py 7 (and `docker-compose build`, Debian's 1.29.2) against engine-py and dockerd 20.10:
`images.build(path=..., tag=..., buildargs=..., target=...)` (its image, its
logs, and the BuildError of a failing RUN) and the low-level
`APIClient.build(..., decode=True)` stream, compared as
test_build_vs_dockerd compares the CLI's builds (`oracle` checks dockerd's
facts, `ours` compares every section with dockerd's): the kinds of the
stream's messages (runs of one kind folded: how output is split into
messages is not the point), its text and aux IDs normalised, and the
image's config."""
import os
import subprocess

import docker
import pytest

from test_build_vs_dockerd import CONFIG_KEYS, Side, make_context, observed, side  # noqa: F401  (a fixture)

pytestmark = pytest.mark.root

DOCKERFILE = """FROM busybox AS base
ARG W=default
RUN echo "w=$W" | tee /w
FROM base AS final
LABEL from=dockerpy
CMD ["cat", "/w"]
FROM final AS broken
RUN echo failing; exit 5
"""


def stream_view(side: Side, messages) -> dict:
    """The kinds of the messages in order (a run of one kind folded), the
    text of the stream messages, the aux values and the error."""
    kinds, text, aux, errors = [], [], [], []
    for m in messages:
        kind = ",".join(sorted(m))
        if not kinds or kinds[-1] != kind:
            kinds.append(kind)
        if "stream" in m:
            text.append(m["stream"])
        if "aux" in m:
            aux.append({k: side.ids(v) for k, v in m["aux"].items()})
        if "error" in m:
            errors.append([m["error"], m.get("errorDetail")])
    return {"kinds": kinds, "text": side.lines("".join(text)), "aux": aux, "errors": errors}


def dockerpy_builds(side: Side, ctx) -> None:
    make_context(ctx, {"Dockerfile": DOCKERFILE})
    tag = f"bvd-py-{side.cli}"
    client = docker.DockerClient(base_url=f"unix://{side.daemon.socket}", version="auto")
    before = side.containers()   # docker-py's rm=False leaves every step's container: counted (then removed)
    try:
        image, logs = client.images.build(path=str(ctx), tag=tag, buildargs={"W": "py"}, target="final",
                                          nocache=True)
        side.view["images.build logs"] = stream_view(side, logs)
        side.view["images.build image"] = {"id": side.ids(image.id), "tags": image.tags,
                                           "config": {k: image.attrs["Config"].get(k) for k in CONFIG_KEYS}}
        side.view["container"] = side.lines(client.containers.run(tag, remove=True, network_mode="none").decode())
        stream = client.api.build(path=str(ctx), tag=tag, buildargs={"W": "py"}, target="final", decode=True)
        side.view["APIClient.build stream (cached)"] = stream_view(side, stream)
        stream = client.api.build(path=str(ctx), tag=tag, target="broken", decode=True)
        side.view["APIClient.build stream (failing)"] = stream_view(side, stream)
        with pytest.raises(docker.errors.BuildError) as failed:
            client.images.build(path=str(ctx), tag=tag, target="broken", nocache=True)
        side.view["BuildError"] = {"msg": failed.value.msg, "log": stream_view(side, failed.value.build_log)}
    finally:
        side.remove_images(tag)
        # dockerd also leaves the (never started) containers of metadata steps, "#(nop)" in their
        # command; the engine makes none for those (engine/builder/README.md: a deliberate difference)
        side.view["RUN containers left"] = sum("#(nop)" not in command for cid, command in side.containers().items()
                                               if cid not in before)
        client.close()


def test_dockerpy_build(request, tmp_path_factory, side):  # noqa: F811
    view = observed(request, tmp_path_factory, side, "28", dockerpy_builds)
    logs = view["images.build logs"]
    assert logs["kinds"] == ["stream", "aux", "stream", "aux", "stream"] and "w=py" in logs["text"]   # an aux a stage
    assert logs["text"][-2:] == [f"Successfully built {logs['aux'][-1]['ID']}", "Successfully tagged bvd-py-28:latest"]
    assert "Removing intermediate container" not in " ".join(logs["text"])   # docker-py's rm defaults to False
    assert view["RUN containers left"] == 5   # ... so dockerd keeps every RUN's container: 1 + 0 cached + 2 + 2
    assert view["images.build image"]["config"]["Labels"] == {"from": "dockerpy"}
    assert view["container"] == ["w=py"]
    assert " ---> Using cache" in view["APIClient.build stream (cached)"]["text"]
    failing = view["APIClient.build stream (failing)"]
    assert failing["kinds"][-1] == "error,errorDetail" and failing["errors"] == [
        ["The command '/bin/sh -c echo failing; exit 5' returned a non-zero code: 5",
         {"code": 5, "message": "The command '/bin/sh -c echo failing; exit 5' returned a non-zero code: 5"}]]
    assert view["BuildError"]["msg"] == "The command '/bin/sh -c echo failing; exit 5' returned a non-zero code: 5"


COMPOSE_FILE = """version: "2.4"
services:
  web:
    build:
      context: ./web
      args:
        GREETING: from-compose
    image: bvd-compose-web
  worker:
    build:
      context: ./worker
      target: runtime
    image: bvd-compose-worker
"""


def compose_builds(side: Side, ctx) -> None:
    """`docker-compose build` (Debian's 1.29.2, over its docker-py 5) of two services, then again (cached)."""
    make_context(ctx, {"docker-compose.yml": COMPOSE_FILE,
                       "web/Dockerfile": 'FROM busybox\nARG GREETING\nRUN echo "$GREETING" > /greeting\n'
                                         'COPY page.html /www/\nCMD ["cat", "/greeting"]\n',
                       "web/page.html": "<p>hello</p>\n",
                       "worker/Dockerfile": "FROM busybox AS tools\nRUN echo tool > /tool\n"
                                            "FROM busybox AS runtime\nCOPY --from=tools /tool /tool\n"
                                            'CMD ["cat", "/tool"]\n'})
    env = {**os.environ, "DOCKER_HOST": f"unix://{side.daemon.socket}", "COMPOSE_DOCKER_CLI_BUILD": "0",
           "DOCKER_CONFIG": f"{side.daemon.workdir}/docker-config"}

    def compose(*args: str) -> dict:
        r = subprocess.run(["docker-compose", "-p", "bvd", *args], cwd=ctx, env=env, capture_output=True,
                           text=True, timeout=300, stdin=subprocess.DEVNULL)
        return {"exit": r.returncode, "stdout": side.lines(r.stdout),
                "stderr": [line for line in side.lines(r.stderr) if "Building" in line or "ERROR" in line]}

    try:
        side.view["compose build"] = compose("build", "--no-cache")
        side.view["compose build (cached)"] = compose("build")
        for service in ("web", "worker"):
            side.image(f"{service} image", f"bvd-compose-{service}")
            side.run(f"{service} container", f"bvd-compose-{service}")
    finally:
        side.remove_images("bvd-compose-web", "bvd-compose-worker")


def test_compose_build(request, tmp_path_factory, side):  # noqa: F811
    view = observed(request, tmp_path_factory, side, "28", compose_builds)
    assert view["compose build"]["exit"] == 0 and view["compose build (cached)"]["exit"] == 0
    assert view["web container"]["stdout"] == ["from-compose"] and view["worker container"]["stdout"] == ["tool"]
    assert sum("Using cache" in line for line in view["compose build (cached)"]["stdout"]) == 7  # 4 + 3 steps
