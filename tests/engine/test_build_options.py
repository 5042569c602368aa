"""The POST /build query as dockerd 20.10 reads it: each option, the CLI's
forms of it, and dockerd's words for a bad value (measured against it in
test_build_api.py)."""
import base64
import json

import pytest

from engine.builder.options import BuildOptions, parse_build_query
from engine.errors import InvalidParameter


def parse(headers=None, **query) -> BuildOptions:
    return parse_build_query({name: value if isinstance(value, list) else [value] for name, value in query.items()},
                             headers or {})


def test_defaults_are_dockerds():
    assert parse() == BuildOptions()
    assert parse().remove and parse().dockerfile == "Dockerfile"


def test_every_option_as_the_cli_sends_it():
    auth = {"127.0.0.1:5000": {"username": "u", "password": "p"}}
    options = parse(
        {"x-registry-config": base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()},
        t=["app", "app:latest", "localhost:5000/x/y:v1", ""], dockerfile="sub/Dockerfile.dev", q="1",
        nocache="true", pull="1", rm="0", forcerm="0", buildargs='{"A":"1","B":null}', labels='{"l":"v","n":null}',
        target="build", networkmode="host", cachefrom='["busybox","a"]', extrahosts=["h:1.2.3.4", "g:5.6.7.8"],
        shmsize="67108864", memory="6291456", memswap="-1", cpushares="512", cpusetcpus="0", cpusetmems="0",
        cpuperiod="100000", cpuquota="50000", ulimits='[{"Name":"nofile","Hard":20,"Soft":10}]',
        platform="linux/amd64", version="1")
    assert options.tags == ("app:latest", "localhost:5000/x/y:v1")
    assert (options.dockerfile, options.quiet, options.no_cache, options.pull) == ("sub/Dockerfile.dev", True, True,
                                                                                    True)
    assert (options.remove, options.force_remove) == (False, False)
    assert options.build_args == {"A": "1", "B": None} and options.labels == {"l": "v", "n": ""}
    assert (options.target, options.network_mode, options.cache_from) == ("build", "host", ("busybox", "a"))
    assert options.extra_hosts == ("h:1.2.3.4", "g:5.6.7.8") and options.shm_size == 64 << 20
    assert options.resources == {"Memory": 6291456, "MemorySwap": -1, "CpuShares": 512, "CpuPeriod": 100000,
                                 "CpuQuota": 50000, "CpusetCpus": "0", "CpusetMems": "0",
                                 "Ulimits": [{"Name": "nofile", "Hard": 20, "Soft": 10}]}
    assert options.registry_config == auth and options.platform == "linux/amd64"


@pytest.mark.parametrize("value, expected", [("1", True), ("True", True), ("yes", True), (" on ", True),
                                             ("0", False), ("false", False), ("no", False), ("None", False),
                                             ("", False)])
def test_bools_as_dockerds_BoolValue(value, expected):
    assert parse(nocache=value).no_cache is expected


def test_rm_defaults_on_and_forcerm_implies_it():
    assert parse(rm="").remove and not parse(rm="false").remove
    assert parse(rm="false", forcerm="1").remove and parse(forcerm="1").force_remove


def test_numbers_that_do_not_parse_are_zero_as_Int64ValueOrZero():
    assert parse(memory="lots", cpushares="1_0", cpuquota=" 5").resources == {}


def test_an_undecodable_registry_config_is_ignored_as_by_dockerd():
    assert parse({"x-registry-config": "!!"}).registry_config == {}
    assert parse({"x-registry-config": base64.urlsafe_b64encode(b"[1]").decode()}).registry_config == {}


@pytest.mark.parametrize("query, message", [
    ({"t": "UPPER"}, "invalid reference format: repository name must be lowercase"),
    ({"t": ":a"}, "invalid reference format"),
    ({"t": "a@sha256:" + "0" * 64}, "build tag cannot contain a digest"),
    ({"buildargs": "nope"}, "error reading build args: invalid character 'o' in literal null (expecting 'u')"),
    ({"buildargs": "x"}, "error reading build args: invalid character 'x' looking for beginning of value"),
    ({"buildargs": '{"a":"b"'}, "error reading build args: unexpected end of JSON input"),
    ({"buildargs": '{"a":"b"}x'}, "error reading build args: invalid character 'x' after top-level value"),
    ({"buildargs": '{"a":1}'}, "error reading build args: json: cannot unmarshal number into Go value of type string"),
    ({"buildargs": '["a"]'},
     "error reading build args: json: cannot unmarshal array into Go value of type map[string]*string"),
    ({"labels": "[]"}, "error reading labels: json: cannot unmarshal array into Go value of type map[string]string"),
    ({"labels": '{"a":1}'}, "error reading labels: json: cannot unmarshal number into Go value of type string"),
    ({"cachefrom": '{"a":1}'}, "json: cannot unmarshal object into Go value of type []string"),
    ({"cachefrom": "[1]"}, "json: cannot unmarshal number into Go value of type string"),
    ({"ulimits": "{}"},
     "error reading ulimit settings: json: cannot unmarshal object into Go value of type []*units.Ulimit"),
    ({"ulimits": '[{"Name":1}]'},
     "error reading ulimit settings: json: cannot unmarshal number into Go struct field Ulimit.Name of type string"),
    ({"shmsize": "x"}, 'strconv.ParseInt: parsing "x": invalid syntax'),
    ({"shmsize": "9" * 20}, f'strconv.ParseInt: parsing "{"9" * 20}": value out of range'),
    ({"isolation": "bad"}, 'Unsupported isolation: "bad"'),
    ({"securityopt": ""}, "The daemon on this platform does not support setting security options on build"),
    ({"version": "3"}, 'invalid version "3"'),
    ({"outputs": "x"}, "invalid character 'x' looking for beginning of value"),
    ({"remote": "x"}, "remoteURL (x) could not be recognized as URL"),
    ({"squash": "1"}, "squash is only supported with experimental mode"),
    ({"shmsize": "x", "buildargs": "x"}, 'strconv.ParseInt: parsing "x": invalid syntax'),  # dockerd's order
    ({"buildargs": "x", "t": "UPPER"},
     "error reading build args: invalid character 'x' looking for beginning of value"),
])
def test_bad_values_in_dockerds_words(query, message):
    with pytest.raises(InvalidParameter) as err:
        parse(**query)
    assert str(err.value) == message


@pytest.mark.parametrize("platform", ["linux/arm64", "windows/amd64"])
def test_only_linux_amd64_is_built(platform):
    with pytest.raises(InvalidParameter, match=f"image platform {platform} is not supported"):
        parse(platform=platform)


def test_buildkit_is_refused_clearly():
    with pytest.raises(InvalidParameter, match="buildkit is not supported by engine-py"):
        parse(version="2")
