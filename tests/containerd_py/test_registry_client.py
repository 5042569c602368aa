"""The registry client against Debian's docker-registry (and a proxy in front of it
for bearer tokens and faults): resolve, fetch with resume, push, auth, TLS."""
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid

import pytest

from conftest import Ctr
from containerd_py import errors, mediatypes as mt
from containerd_py.reference import Reference, parse
from containerd_py.remotes.auth import load_docker_config, parse_challenges
from containerd_py.remotes.hosts import host_config, is_loopback
from containerd_py.remotes.registry import Registry
from containerd_py.types import Descriptor
from imagebuild import build_image, docker_archive, file_, oci_archive
from registries import Fault, docker_registry, free_port, proxy, skopeo_copy

pytestmark = pytest.mark.root


def client(host: str, **kw) -> Registry:
    return Registry(host_config(host, plain_http=True), backoff=0, **kw)


def repo() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pushed(registry, tmp_path):
    """An OCI image put into a fresh repository by skopeo: (repository, image)."""
    image = build_image([[file_("a", os.urandom(300_000))], [file_("b", b"b")]])
    (tmp_path / "img.tar").write_bytes(oci_archive(image, "x/y:latest"))
    name = repo()
    skopeo_copy(str(tmp_path / "img.tar"), registry, f"{name}:v1")
    return name, image


def layer_desc(image, i=0) -> Descriptor:
    d = image.layer_digests[i]
    return Descriptor(mt.OCI_LAYER_GZIP, d, len(image.blobs[d]))


@pytest.mark.parametrize("text, expected", [
    ("busybox", Reference("docker.io", "library/busybox", "latest")),
    ("user/app:1.0", Reference("docker.io", "user/app", "1.0")),
    ("127.0.0.1:5000/a/b:t", Reference("127.0.0.1:5000", "a/b", "t")),
    ("localhost/x@sha256:" + "a" * 64, Reference("localhost", "x", "", "sha256:" + "a" * 64)),
])
def test_reference_parsing(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["UPPER/x", "a/b:bad tag", "x@sha256:short", "host:99999999999x/a"])
def test_bad_references_are_refused(text):
    with pytest.raises(errors.InvalidArgument, match="reference"):
        parse(text)


def test_challenge_parsing():
    (c,) = parse_challenges(['Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"'])
    assert (c.scheme, c.params) == ("bearer", {"realm": "https://auth.example/token", "service": "reg",
                                               "scope": "repository:a:pull"})


def test_docker_config_credentials(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        "127.0.0.1:5000": {"auth": base64.b64encode(b"me:secret:colon").decode()},
        "https://index.docker.io/v1/": {"username": "hub", "password": "pw"}}}))
    assert load_docker_config(str(tmp_path / "config.json")) == {"127.0.0.1:5000": ("me", "secret:colon"),
                                                                 "docker.io": ("hub", "pw")}
    assert load_docker_config(str(tmp_path / "missing.json")) == {}


def test_resolve_and_fetch_an_oci_manifest(registry, pushed):
    name, image = pushed
    r = client(registry.host)
    desc = r.resolve(name, "v1")
    assert desc == Descriptor(mt.OCI_MANIFEST, image.manifest["digest"], image.manifest["size"])
    assert r.resolve(name, desc.digest) == desc
    assert r.fetch_bytes(name, desc) == image.blobs[desc.digest]
    with pytest.raises(errors.NotFound, match="404"):
        r.resolve(name, "nope")


def test_resolve_a_docker_schema2_manifest(registry, tmp_path):
    image = build_image([[file_("a", b"a")]])
    (tmp_path / "img.tar").write_bytes(docker_archive(image, "x/y:latest"))
    name = repo()
    skopeo_copy(str(tmp_path / "img.tar"), registry, f"{name}:v1", "docker-archive")
    r = client(registry.host)
    desc = r.resolve(name, "v1")
    assert desc.media_type == mt.DOCKER_MANIFEST
    manifest = json.loads(r.fetch_bytes(name, desc))
    assert manifest["config"]["mediaType"] == mt.DOCKER_CONFIG


def test_fetch_resumes_with_range_after_a_truncated_stream(registry, pushed):
    name, image = pushed
    layer = layer_desc(image)
    with proxy(registry) as p:
        p.faults.append(Fault(f"/blobs/{layer.digest}", "truncate", times=1))
        parts = []
        client(p.host).fetch(name, layer, parts.append)
        gets = [h for m, path, h in p.log.requests if m == "GET" and layer.digest in path]
    assert b"".join(parts) == image.blobs[layer.digest]
    assert len(gets) == 2 and "Range" not in gets[0] and gets[1]["Range"].startswith("bytes=")
    assert gets[1]["Range"] != "bytes=0-"


def test_transient_errors_are_retried_and_persistent_ones_reported(registry, pushed):
    name, image = pushed
    layer = layer_desc(image)
    with proxy(registry) as p:
        p.faults.append(Fault(layer.digest, "503", times=2))
        parts = []
        client(p.host).fetch(name, layer, parts.append)
        assert b"".join(parts) == image.blobs[layer.digest]
        p.faults.append(Fault(layer.digest, "500"))
        with pytest.raises(errors.Unavailable, match=r"500 Internal Server Error.*after 3 attempts"):
            client(p.host, retries=2).fetch(name, layer, [].append)


def test_fetch_bytes_refuses_content_that_does_not_match_its_digest(registry, pushed):
    name, image = pushed
    with proxy(registry) as p:
        p.faults.append(Fault("/manifests/", "corrupt"))
        with pytest.raises(errors.FailedPrecondition, match="different content"):
            client(p.host).fetch_bytes(name, Descriptor(mt.OCI_MANIFEST, image.manifest["digest"],
                                                        image.manifest["size"]))


def test_push_monolithic_chunked_and_mounted(registry):
    data = os.urandom(100_000)
    desc = Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    first, second, third = repo(), repo(), repo()
    with proxy(registry) as p:
        r = client(p.host)
        assert r.push_blob(first, desc, lambda: io.BytesIO(data)) == "pushed"
        assert r.push_blob(first, desc, lambda: io.BytesIO(data)) == "exists"
        assert r.push_blob(second, desc, lambda: io.BytesIO(b""), mount_from=(first,)) == "mounted"
        done = []
        assert r.push_blob(third, desc, lambda: io.BytesIO(data), chunk_size=30_000, progress=done.append) == "pushed"
        patches = [h["Content-Range"] for m, path, h in p.log.requests if m == "PATCH"]
    assert patches == ["0-29999", "30000-59999", "60000-89999", "90000-99999"]
    assert sum(done) == len(data)
    for name in (first, second, third):
        parts = []
        client(registry.host).fetch(name, desc, parts.append)
        assert b"".join(parts) == data


def test_push_manifest_then_resolve(registry):
    image = build_image([[file_("m", b"m")]])
    r, name = client(registry.host), repo()
    for d, blob in image.blobs.items():
        if d != image.manifest["digest"]:
            r.push_blob(name, Descriptor("application/octet-stream", d, len(blob)), lambda b=blob: io.BytesIO(b))
    desc = Descriptor(mt.OCI_MANIFEST, image.manifest["digest"], image.manifest["size"])
    r.put_manifest(name, "t", desc, image.blobs[desc.digest])
    assert r.resolve(name, "t") == desc


def test_manifest_naming_missing_blobs_is_refused_by_the_registry(registry):
    image = build_image([[file_("m", b"m")]])
    desc = Descriptor(mt.OCI_MANIFEST, image.manifest["digest"], image.manifest["size"])
    with pytest.raises(errors.FailedPrecondition, match="400 Bad Request.*BLOB_UNKNOWN|MANIFEST_BLOB_UNKNOWN"):
        client(registry.host).put_manifest(repo(), "t", desc, image.blobs[desc.digest])


def test_bearer_token_flow(registry, pushed):
    name, image = pushed
    with proxy(registry, bearer=True) as p:
        r = client(p.host)
        desc = r.resolve(name, "v1")
        parts = []
        r.fetch(name, layer_desc(image), parts.append)
        data = b"pushed through a token"
        blob = Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
        r.push_blob(name, blob, lambda: io.BytesIO(data))
        scopes = p.log.token_scopes
    assert desc.digest == image.manifest["digest"] and b"".join(parts) == image.blobs[image.layer_digests[0]]
    # One token per scope, reused across requests.
    assert scopes == [[f"repository:{name}:pull"], [f"repository:{name}:pull,push"]]


def test_no_challenge_answer_is_an_auth_error(registry, pushed):
    name, _ = pushed
    with proxy(registry, bearer=True) as p:
        p.faults.append(Fault("/token", "403"))
        with pytest.raises(errors.Unauthenticated, match="token server"):
            client(p.host).resolve(name, "v1")


@pytest.fixture(scope="module")
def basic_registry():
    with docker_registry(htpasswd_user=("alice", "s3cret")) as r:
        yield r


def test_htpasswd_basic_auth(basic_registry, tmp_path):
    image = build_image([[file_("secret", b"s")]])
    (tmp_path / "img.tar").write_bytes(oci_archive(image, "x/y:latest"))
    skopeo_copy(str(tmp_path / "img.tar"), basic_registry, "private:v1")
    with pytest.raises(errors.Unauthenticated, match="401"):
        client(basic_registry.host).resolve("private", "v1")
    with pytest.raises(errors.Unauthenticated, match="401"):
        client(basic_registry.host, credentials=("alice", "wrong")).resolve("private", "v1")
    (tmp_path / "config.json").write_text(json.dumps({"auths": {basic_registry.host: {
        "auth": base64.b64encode(b"alice:s3cret").decode()}}}))
    credentials = load_docker_config(str(tmp_path / "config.json"))[basic_registry.host]
    assert client(basic_registry.host, credentials=credentials).resolve("private", "v1").digest == \
        image.manifest["digest"]


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.3.4.5", True),
    ("[::1]:5000", True), ("docker.io", False), ("10.0.0.1:5000", False), ("localhost.example.com", False),
])
def test_loopback_hosts_are_recognised(host, loopback):
    assert is_loopback(host) == loopback
    assert host_config(host).http_fallback == loopback
    assert not host_config(host, plain_http=True).http_fallback


def test_a_loopback_registry_works_over_plain_http_without_a_flag(registry, pushed):
    name, image = pushed
    port = registry.host.rsplit(":", 1)[1]
    for host in (registry.host, f"localhost:{port}"):
        r = Registry(host_config(host), retries=0)
        assert r.resolve(name, "v1").digest == image.manifest["digest"]
        assert r.base_url == f"http://{host}"


def test_ctl_pulls_from_a_loopback_registry_without_a_flag(daemon, ns, registry, pushed):
    name, image = pushed
    result = subprocess.run([sys.executable, "-m", "containerd_py.client", "-a", daemon.address, "-n", ns, "pull",
                             "--no-unpack", f"{registry.host}/{name}:v1"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"Digest: {image.manifest['digest']}" in result.stdout


def closed_port_error(host: str) -> str:
    return (f'failed to resolve reference "{host}/x:latest": failed to do request: '
            f'Head "http://{host}/v2/x/manifests/latest": dial tcp {host}: connect: connection refused')


def test_a_closed_port_is_named_in_containerds_words():
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(errors.Unavailable) as e:
        Registry(host_config(host), retries=1, backoff=0).resolve("x", "latest")
    assert str(e.value) == closed_port_error(host) + " (after 2 attempts): unavailable"


def test_a_lookup_with_no_nameserver_reachable_says_so_as_gos_resolver(tmp_path):
    """In a network namespace with only lo (as a daemon's in the engine's
    tests): the last nameserver's dial error, as dockerd's; a reachable one
    leaves getaddrinfo's reason."""
    (tmp_path / "resolv.conf").write_text("search example\nnameserver 192.0.2.1\nnameserver 192.0.2.2\n")
    (tmp_path / "loopback.conf").write_text("nameserver 127.0.0.1\n")
    netns = f"registry-test-{uuid.uuid4().hex[:8]}"
    code = ("import socket, sys; from containerd_py.remotes.registry import _lookup_failure as f; "
            "cause = socket.gaierror(socket.EAI_AGAIN, 'Temporary failure in name resolution'); "
            "print(f('h.test', cause, sys.argv[1])); print(f('h.test', cause, sys.argv[2]))")
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code, tmp_path / "resolv.conf",
                              tmp_path / "loopback.conf"], check=True, capture_output=True, text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=True)
    assert out.splitlines() == ["lookup h.test on 192.0.2.2:53: dial udp 192.0.2.2:53: connect: network is unreachable",
                                "lookup h.test: temporary failure in name resolution"]


def test_ctr_says_the_same_of_a_closed_port(containerd, ns):
    host = f"127.0.0.1:{free_port()}"
    result = Ctr(containerd.address, ns)("images", "pull", f"{host}/x:latest", check=False)
    assert result.stderr.splitlines()[-1] == "ctr: " + closed_port_error(host)


def test_https_with_a_custom_ca(tmp_path):
    with docker_registry(tls=True) as r:
        image = build_image([[file_("tls", b"t")]])
        (tmp_path / "img.tar").write_bytes(oci_archive(image, "x/y:latest"))
        skopeo_copy(str(tmp_path / "img.tar"), r, "tls:v1")
        with pytest.raises(errors.Unavailable, match="CERTIFICATE_VERIFY_FAILED"):
            Registry(host_config(r.host), retries=0).resolve("tls", "v1")
        hosts = tmp_path / "certs.d" / r.host
        hosts.mkdir(parents=True)
        os.link(r.ca, hosts / "ca.pem")
        (hosts / "hosts.toml").write_text(f'server = "https://{r.host}"\nca = "ca.pem"\n')
        config = host_config(r.host, hosts_dir=str(tmp_path / "certs.d"))
        assert Registry(config).resolve("tls", "v1").digest == image.manifest["digest"]
        (hosts / "hosts.toml").write_text("skip_verify = true\n")
        assert Registry(host_config(r.host, hosts_dir=str(tmp_path / "certs.d"))).resolve("tls", "v1").size > 0
