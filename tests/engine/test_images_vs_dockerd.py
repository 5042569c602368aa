"""The image service against dockerd 20.10 itself: the same image, pulled
from one local registry into both, gives the same progress messages and the
same `images/json`, inspect and history a user reads.

dockerd runs in a network namespace of its own (dockerd_oracle); a second
docker-registry process serves the same storage on the same address inside
it, so both daemons pull `127.0.0.1:PORT/rich:1.0` under one name.

Left out of the comparison: GraphDriver (dockerd's overlay2 directories; the
engine never looks at containerd's).
"""
import json
import os
import subprocess
import time
import urllib.parse
from contextlib import contextmanager

import pytest

from test_images_service import daemon, make_service, registry  # noqa: F401  (fixtures)
from test_vs_dockerd import UnixConnection
from conftest import START_DEADLINE
from engine.errors import EngineError, NotFound, http_status
from engine.filters import Filters
from engine.services.pull_progress import progress_text
from imagebuild import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Image, compress, digest, dir_, file_, layer_tar, \
    oci_archive
from registries import REGISTRY, skopeo_copy

pytestmark = pytest.mark.root
UNCOMPARED = ("GraphDriver",)


def rich_image() -> Image:
    """Two layers (one over 512 KiB, so it has several Downloading messages), labels, an author,
    and history with an empty layer: every field the outputs take from the config."""
    layers = [[dir_("etc/"), file_("etc/hello", b"hello\n")],
              [dir_("data/"), file_("data/blob", os.urandom(1_500_000))]]
    blobs, descs, diff_ids = {}, [], []
    for entries in layers:
        raw = layer_tar(entries)
        blob = compress(raw, "gzip")
        blobs[digest(blob)] = blob
        diff_ids.append(digest(raw))
        descs.append({"mediaType": OCI_LAYER + "+gzip", "digest": digest(blob), "size": len(blob)})
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2021-03-04T05:06:07.123456789Z", "author": "someone",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "Labels": {"app": "rich", "tier": "1"},
                   "WorkingDir": "/data", "ExposedPorts": {"80/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2021-03-04T05:06:05Z", "created_by": "ADD etc /etc"},
                    {"created": "2021-03-04T05:06:06Z", "created_by": "ENV PATH=/bin", "empty_layer": True,
                     "comment": "no files"},
                    {"created": "2021-03-04T05:06:07Z", "created_by": "ADD data /data"}]}).encode()
    blobs[digest(config)] = config
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": digest(config), "size": len(config)},
                           "layers": descs}).encode()
    blobs[digest(manifest)] = manifest
    return Image(blobs, {"mediaType": OCI_MANIFEST, "digest": digest(manifest), "size": len(manifest)},
                 digest(config), [d["digest"] for d in descs], diff_ids)


@contextmanager
def registry_in(netns: str, registry):
    """The registry's storage served on its address inside netns too."""
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    with open(f"{registry.workdir}/netns-registry.log", "wb") as log:
        proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{netns}", REGISTRY, "serve",
                                 f"{registry.workdir}/config.yml"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        probe = ["nsenter", f"--net=/run/netns/{netns}", "python3", "-c",  # an answer, 401 included, is up
                 "import urllib.error, urllib.request\ntry:\n"
                 f"    urllib.request.urlopen('http://{registry.host}/v2/', timeout=5)\n"
                 "except urllib.error.HTTPError:\n    pass"]
        deadline = time.monotonic() + START_DEADLINE
        while subprocess.run(probe, capture_output=True).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, "the namespace's registry did not start"
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def dockerd_api(dockerd, method: str, path: str) -> tuple[int, list]:
    """Status and the JSON values of the body (one per line for a stream)."""
    conn = UnixConnection(dockerd.socket)
    try:
        conn.request(method, f"/v1.41{path}")
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()
    return response.status, [json.loads(line) for line in body.splitlines() if line.strip()]


def per_layer(messages: list[dict]) -> dict[str, list[str]]:
    """Each layer's statuses, repeats of one status folded (how many progress updates differs)."""
    layers: dict[str, list[str]] = {}
    for m in messages:
        if "id" in m and "progressDetail" in m:
            seen = layers.setdefault(m["id"], [])
            if not seen or seen[-1] != m["status"]:
                seen.append(m["status"])
    return layers


@pytest.fixture(scope="module")
def both(dockerd, daemon, registry, tmp_path_factory):  # noqa: F811
    """The image pulled by dockerd and by the engine's service: (theirs, ours) pull streams and the service."""
    archive = tmp_path_factory.mktemp("rich") / "rich.tar"
    archive.write_bytes(oci_archive(rich_image(), "rich:1.0"))
    skopeo_copy(str(archive), registry, "rich:1.0")
    skopeo_copy(str(archive), registry, "other/rich:2")
    archive.write_bytes(oci_archive(rich_image(), "gone:1"))  # another image: its layer's bytes are random
    skopeo_copy(str(archive), registry, "gone:1")
    service, _, client = make_service(daemon.address)
    with registry_in(dockerd.netns, registry):
        status, theirs = dockerd_api(dockerd, "POST", f"/images/create?fromImage={registry.host}/rich&tag=1.0")
        assert status == 200, theirs
        ours = list(service.pull(f"{registry.host}/rich", "1.0"))
        again = (dockerd_api(dockerd, "POST", f"/images/create?fromImage={registry.host}/rich&tag=1.0")[1],
                 list(service.pull(f"{registry.host}/rich", "1.0")))
        missing = (dockerd_api(dockerd, "POST", f"/images/create?fromImage={registry.host}/nosuch&tag=1.0"))
        second_name = (dockerd_api(dockerd, "POST", f"/images/create?fromImage={registry.host}/other/rich&tag=2")[1],
                       list(service.pull(f"{registry.host}/other/rich", "2")))
    yield theirs, ours, again + second_name, missing, service
    dockerd.docker("rmi", f"{registry.host}/other/rich:2", check=False)
    dockerd.docker("rmi", f"{registry.host}/rich:1.0", check=False)
    for image in client.images.list([]):
        client.images.delete(image.name, sync=True)
    client.close()


def test_pull_stream_matches_dockerd(both):
    theirs, ours, _, _, _ = both
    assert [m for m in ours if "id" not in m or "progressDetail" not in m] == \
        [m for m in theirs if "id" not in m or "progressDetail" not in m]
    # dockerd's watchers see only the latest state of a layer's transfer, so on a fast one it may
    # skip Downloading and Verifying Checksum: its sequence is a part of ours, ours is the whole.
    full = ["Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete", "Extracting",
            "Pull complete"]
    assert per_layer(ours) == {k: full for k in per_layer(theirs)}
    for statuses in per_layer(theirs).values():
        assert [s for s in full if s in statuses] == [s for s in statuses if s != "Waiting"]
    # The bar and numbers: dockerd's text for each of its counts is ours for the same counts.
    bars = [m for m in theirs if m["status"] in ("Downloading", "Extracting")]
    assert bars and all(progress_text(**m["progressDetail"]) == m["progress"] for m in bars)


def test_repeated_pull_and_pull_under_another_name_match_dockerd(both):
    """No layer messages at all: dockerd shows none once it has the image's config."""
    _, _, (theirs, ours, theirs_other, ours_other), _, _ = both
    assert ours == theirs
    assert ours_other == theirs_other


def test_pull_of_a_missing_image_matches_dockerd(both, registry):  # noqa: F811
    *_, (status, body), service = both
    with pytest.raises(NotFound) as e:
        service.pull(f"{registry.host}/nosuch", "1.0")
    assert (http_status(e.value), str(e.value)) == (status, body[0]["message"])


def test_images_json_matches_dockerd(both, dockerd, registry):  # noqa: F811
    *_, service = both
    status, (theirs_all,) = dockerd_api(dockerd, "GET", "/images/json")
    (theirs,) = [s for s in theirs_all if f"{registry.host}/rich:1.0" in (s["RepoTags"] or [])]
    (ours,) = service.list()
    assert {k: v for k, v in ours.items() if k not in UNCOMPARED} == \
        {k: v for k, v in theirs.items() if k not in UNCOMPARED}


def test_inspect_and_history_match_dockerd(both, dockerd, registry):  # noqa: F811
    *_, service = both
    ref = f"{registry.host}/rich:1.0"
    _, (theirs,) = dockerd_api(dockerd, "GET", f"/images/{ref}/json")
    ours = service.inspect(ref)
    assert {k: v for k, v in ours.items() if k not in UNCOMPARED} == \
        {k: v for k, v in theirs.items() if k not in UNCOMPARED}
    assert list(ours) == list(theirs)
    _, (theirs_history,) = dockerd_api(dockerd, "GET", f"/images/{ref}/history")
    ours_history = service.history(ref)
    assert ours_history == theirs_history


BAD_REFS = ["nosuch", "nosuch:1", "BusyBox", "a:b:c", "sha256:" + "a" * 64, "a" * 64, "busybox@sha256:" + "b" * 64,
            "127.0.0.1:1/x", "-x", "x/Y:1"]


@pytest.mark.parametrize("ref", BAD_REFS)
def test_lookup_errors_match_dockerd(both, dockerd, ref):
    *_, service = both
    quoted = urllib.parse.quote(ref, safe="")
    for method, path, call in [("GET", f"/images/{quoted}/json", service.inspect),
                               ("GET", f"/images/{quoted}/history", service.history),
                               ("DELETE", f"/images/{quoted}", service.remove),
                               ("POST", f"/images/{quoted}/tag?repo=x", lambda r: service.tag(r, "x"))]:
        status, (body,) = dockerd_api(dockerd, method, path)
        with pytest.raises(EngineError) as e:
            call(ref)
        assert (http_status(e.value), str(e.value)) == (status, body["message"]), f"{method} {path}"


@pytest.mark.parametrize("repo,tag", [("BAD", ""), ("x", "-bad"), ("x@sha256:" + "c" * 64, ""), ("x:1", "a:b"),
                                      ("", "")])
def test_tag_errors_match_dockerd(both, dockerd, registry, repo, tag):  # noqa: F811
    *_, service = both
    source = f"{registry.host}/rich:1.0"
    query = urllib.parse.urlencode({"repo": repo, "tag": tag})
    status, (body,) = dockerd_api(dockerd, "POST", f"/images/{urllib.parse.quote(source, safe='')}/tag?{query}")
    with pytest.raises(EngineError) as e:
        service.tag(source, repo, tag)
    # dockerd 20.10 answers these 500 (its tag route does not classify them); later moby 400, as we do.
    assert (http_status(e.value), str(e.value)) == (400 if status == 500 else status, body["message"])


@pytest.mark.parametrize("filters", [
    {"reference": ["{host}/*"]}, {"reference": ["{host}/*/*"]}, {"reference": ["{host}/rich:1.0"]},
    {"reference": ["*rich*"]}, {"reference": ["{host}/[a-q]*"]}, {"reference": ["{host}/other/rich"]},
    {"label": ["app"]}, {"label": ["app=rich"]}, {"label": ["app=other"]}, {"label": ["app", "tier=1"]},
    {"dangling": ["false"]}, {"dangling": ["true"]}, {"before": ["{host}/rich:1.0"]}, {"since": ["{host}/rich:1.0"]}])
def test_list_filters_match_dockerd(both, dockerd, registry, filters):  # noqa: F811
    """dockerd also has busybox (loaded by the fixture): compared without it."""
    *_, service = both
    raw = json.dumps({k: {v.format(host=registry.host): True for v in values} for k, values in filters.items()})
    _, (theirs,) = dockerd_api(dockerd, "GET", f"/images/json?filters={urllib.parse.quote(raw)}")
    theirs = [{k: v for k, v in s.items() if k not in UNCOMPARED} for s in theirs if "busybox:latest" not in
              (s["RepoTags"] or [])]
    ours = [{k: v for k, v in s.items() if k not in UNCOMPARED} for s in service.list(Filters.parse(raw))]
    assert ours == theirs


@pytest.mark.parametrize("image,tag", [("BusyBox", ""), ("a:b:c", ""), ("busybox", "bad:tag"), ("-x", ""),
                                       ("a" * 64, ""), ("busybox", "sha256:" + "0" * 63)])
def test_pull_reference_errors_match_dockerd(both, dockerd, image, tag):
    *_, service = both
    query = urllib.parse.urlencode({"fromImage": image, "tag": tag})
    status, (body,) = dockerd_api(dockerd, "POST", f"/images/create?{query}")
    with pytest.raises(EngineError) as e:
        service.pull(image, tag)
    assert (http_status(e.value), str(e.value)) == (status, body["message"])


def test_remove_matches_dockerd(both, dockerd, registry):  # noqa: F811
    """Refused while a (stopped) container uses it, by name and by ID; then untagged and deleted."""
    *_, service = both
    ref = f"{registry.host}/gone:1"
    with registry_in(dockerd.netns, registry):
        assert dockerd_api(dockerd, "POST", f"/images/create?fromImage={registry.host}/gone&tag=1")[0] == 200
    list(service.pull(ref))
    image_id = service.inspect(ref)["Id"]
    container = dockerd.docker("create", "--runtime", "dump", ref).stdout.strip()
    service.in_use.by_image[image_id] = [(container, False)]
    try:
        for name in (ref, image_id[7:19]):
            status, (theirs,) = dockerd_api(dockerd, "DELETE", f"/images/{urllib.parse.quote(name, safe='')}")
            with pytest.raises(EngineError) as e:
                service.remove(name)
            assert (http_status(e.value), str(e.value)) == (status, theirs["message"])
    finally:
        dockerd.docker("rm", container)
        service.in_use.by_image.clear()
    status, (theirs,) = dockerd_api(dockerd, "DELETE", f"/images/{urllib.parse.quote(ref, safe='')}")
    assert status == 200
    assert service.remove(ref) == theirs


def test_pull_by_digest_then_tag_match_dockerd(both, dockerd, registry):  # noqa: F811
    """(Last: it adds names the other comparisons do not expect.)"""
    *_, service = both
    ref = f"{registry.host}/rich:1.0"
    digest_ref = service.inspect(ref)["RepoDigests"][0]
    with registry_in(dockerd.netns, registry):
        _, theirs = dockerd_api(dockerd, "POST", f"/images/create?fromImage={urllib.parse.quote(digest_ref)}")
    assert list(service.pull(digest_ref)) == theirs

    query = urllib.parse.urlencode({"repo": "mine/rich", "tag": "v2"})
    assert dockerd_api(dockerd, "POST", f"/images/{urllib.parse.quote(ref, safe='')}/tag?{query}")[0] == 201
    service.tag(ref, "mine/rich", "v2")
    _, (theirs,) = dockerd_api(dockerd, "GET", "/images/mine/rich:v2/json")
    ours = service.inspect("mine/rich:v2")
    assert ours["RepoTags"] == theirs["RepoTags"] and ours["RepoDigests"] == theirs["RepoDigests"]
    assert ours["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z" != theirs["Metadata"]["LastTagTime"]
    _, (theirs_history,) = dockerd_api(dockerd, "GET", "/images/mine/rich:v2/history")
    assert [h["Tags"] for h in service.history("mine/rich:v2")] == [h["Tags"] for h in theirs_history]
    dockerd.docker("rmi", "mine/rich:v2")
