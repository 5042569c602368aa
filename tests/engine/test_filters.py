"""engine.filters: the filters parameter in both of dockerd's forms, the
names each endpoint accepts, moby's matchers, and the container filters'
value checks in dockerd 20.10's words (measured against it)."""
from types import SimpleNamespace

import pytest

from engine import filters
from engine.errors import InvalidParameter, NotFound, http_status
from engine.filters import ContainerFilter, Filters
from engine.services.container_views import image_family


def refused(call, *args, kind=InvalidParameter, **kwargs):
    with pytest.raises(kind) as info:
        call(*args, **kwargs)
    return str(info.value)


@pytest.mark.parametrize("raw", [None, "", "{}"])
def test_no_filters(raw):
    assert Filters.parse(raw).fields == {}


def test_the_map_form_and_the_legacy_list_form_read_the_same():
    assert Filters.parse('{"label":{"a=1":true,"b":true},"status":{"running":true}}').fields == \
        Filters.parse('{"label":["a=1","b"],"status":["running"]}').fields == \
        {"label": {"a=1", "b"}, "status": {"running"}}


def test_a_value_set_to_false_is_not_a_value():
    assert Filters.parse('{"label":{"a":false,"b":true}}').fields == {"label": {"b"}}


@pytest.mark.parametrize("raw", ["notjson", "[]", '"x"', '{"label":{"a":"x"}}', '{"label":"a"}',
                                 '{"label":{"a":true},"name":["x"]}', '{"label":[1]}'])
def test_an_unreadable_parameter_is_a_400(raw):
    with pytest.raises(InvalidParameter) as info:
        Filters.parse(raw)
    assert str(info.value) == "invalid filter" and http_status(info.value) == 400


@pytest.mark.parametrize("accepted, name", [
    (filters.CONTAINER_FILTERS, "foo"), (filters.IMAGE_FILTERS, "status"), (filters.VOLUME_FILTERS, "id"),
    (filters.NETWORK_FILTERS, "foo"), (filters.CONTAINER_PRUNE_FILTERS, "status"),
])
def test_an_unknown_name_is_dockerds_invalid_filter(accepted, name):
    assert refused(Filters({name: {"x"}}).validate, accepted) == f"Invalid filter '{name}'"


def test_known_names_pass():
    assert Filters({"label": {"a"}, "dangling": {"true"}}).validate(filters.IMAGE_FILTERS).contains("label")


def test_match_is_exact_or_a_regular_expression_found_anywhere():
    f = Filters({"name": {"^we", "ap+i$", "[bad"}})
    assert f.match("name", "web") and f.match("name", "xappi") and f.match("name", "[bad")
    assert not f.match("name", "aweb") and not f.match("name", "apix")
    assert Filters().match("name", "anything")


def test_exact_match_takes_no_expressions():
    f = Filters({"health": {"healthy"}})
    assert f.exact_match("health", "healthy") and not f.exact_match("health", "unhealthy")


def test_labels_match_by_key_or_key_and_value():
    labels = {"com.docker.compose.project": "p", "n": "3"}
    assert Filters({"label": {"n", "com.docker.compose.project=p"}}).match_kv_list("label", labels)
    assert not Filters({"label": {"n=4"}}).match_kv_list("label", labels)
    assert not Filters({"label": {"m"}}).match_kv_list("label", labels)
    assert not Filters({"label": {"n!=3"}}).match_kv_list("label", labels)  # 20.10 knows no "!="
    assert not Filters({"label": {"n"}}).match_kv_list("label", {})
    assert Filters({"label": {"a="}}).match_kv_list("label", {"a": ""})


# --- container filters: values checked before anything is listed -----------

@pytest.mark.parametrize("fields, message", [
    ({"foo": {"x"}}, "Invalid filter 'foo'"),
    ({"status": {"foo", "running"}}, "Invalid filter 'status=foo'"),
    ({"is-task": {"x"}}, "Invalid filter 'is-task=[x]'"),
    ({"health": {"x"}}, "Unrecognised filter value for health: x"),
    ({"exited": {"abc"}}, 'strconv.Atoi: parsing "abc": invalid syntax'),
    ({"exited": {" 1"}}, 'strconv.Atoi: parsing " 1": invalid syntax'),
    ({"publish": {"1:2"}}, "filter for 'publish' should not contain ':': 1:2"),
    ({"publish": {"abc"}}, 'error while looking up for publish abc: strconv.ParseUint: parsing "abc": invalid syntax'),
    ({"expose": {"90-80/udp"}}, "error while looking up for expose 90-80/udp: Invalid range specified for the "
                                "Port: 90-80"),
])
def test_bad_container_filter_values_in_dockerds_words(fields, message):
    assert refused(ContainerFilter, Filters(fields)) == message


def test_before_and_since_name_a_container_by_full_id_or_name():
    known = {"web": "a record"}
    assert ContainerFilter(Filters({"before": {"web"}}), find_exact=known.get).before == "a record"
    with pytest.raises(NotFound) as info:
        ContainerFilter(Filters({"since": {"nope"}}), find_exact=known.get)
    assert str(info.value) == "no such container nope" and http_status(info.value) == 404


def test_a_status_filter_lists_stopped_containers_too():
    assert ContainerFilter(Filters({"status": {"exited"}})).all
    assert not ContainerFilter(Filters({"label": {"a"}})).all


def test_ancestors_come_from_the_callback_and_an_unknown_image_matches_nothing():
    images = {"busybox": {"sha256:b", "sha256:child"}}
    folded = ContainerFilter(Filters({"ancestor": {"busybox", "nosuch"}}), resolve_ancestors=images.get)
    assert folded.images == {"sha256:b", "sha256:child"}
    assert ContainerFilter(Filters({"ancestor": {"nosuch"}}), resolve_ancestors=images.get).images == set()


def test_an_ancestor_is_the_image_and_every_image_built_on_it():
    """What the assembly gives ContainerViews as resolve_ancestors (dockerd walks the children)."""
    class Catalog:
        children = {"sha256:base": ["sha256:mid", "sha256:other"], "sha256:mid": ["sha256:leaf"]}

        def find(self, ref):
            if ref not in ("busybox", "sha256:mid"):
                raise NotFound(f"No such image: {ref}")
            return SimpleNamespace(id="sha256:base" if ref == "busybox" else ref)

    assert image_family(Catalog(), "busybox") == {"sha256:base", "sha256:mid", "sha256:other", "sha256:leaf"}
    assert image_family(Catalog(), "sha256:mid") == {"sha256:mid", "sha256:leaf"}
    assert image_family(Catalog(), "nosuch") is None


def test_port_filters_take_ranges_and_protocols():
    folded = ContainerFilter(Filters({"publish": {"8080-8081"}, "expose": {"53/udp"}}))
    assert folded.publish == {"8080/tcp", "8081/tcp"} and folded.expose == {"53/udp"}


def test_prune_labels_take_all_of_label_and_none_of_label_not():
    labels = {"keep": "yes", "tier": "db"}
    assert Filters({"label": {"tier=db"}}).match_labels(labels)
    assert not Filters({"label!": {"keep"}}).match_labels(labels)
    assert Filters({"label!": {"keep=no"}}).match_labels(labels)
    assert not Filters({"label": {"tier=db"}, "label!": {"keep=yes"}}).match_labels(labels)
    assert Filters().match_labels({})
