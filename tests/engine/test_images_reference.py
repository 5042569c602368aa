"""Image references as dockerd reads and shows them (no daemon)."""
import pytest

from engine.errors import InvalidParameter
from engine.reference import familiar_match, go_path_match, parse_any, parse_normalized


@pytest.mark.parametrize("text,full,familiar", [
    ("busybox", "docker.io/library/busybox", "busybox"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox", "busybox"),
    ("index.docker.io/user/app", "docker.io/user/app", "user/app"),
    ("docker.io/library/a/b", "docker.io/library/a/b", "library/a/b"),
    ("localhost/app", "localhost/app", "localhost/app"),
    ("127.0.0.1:5000/x/y:1.0", "127.0.0.1:5000/x/y:1.0", "127.0.0.1:5000/x/y:1.0"),
    ("app@sha256:" + "a" * 64, "docker.io/library/app@sha256:" + "a" * 64, "app@sha256:" + "a" * 64),
])
def test_short_names_normalise_and_show_back_familiar(text, full, familiar):
    ref = parse_normalized(text)
    assert (str(ref), ref.familiar()) == (full, familiar)


@pytest.mark.parametrize("text,message", [
    ("BusyBox", "invalid reference format: repository name must be lowercase"),
    ("x/Y:1", "invalid reference format: repository name must be lowercase"),
    ("a:b:c", "invalid reference format"), ("-x", "invalid reference format"), ("", "invalid reference format"),
    ("a" * 64, f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings"),
    ("x/" + "a" * 260, "repository name must not be more than 255 characters"),
])
def test_invalid_references_say_what_dockerd_says(text, message):
    with pytest.raises(InvalidParameter) as e:
        parse_normalized(text)
    assert str(e.value) == message


def test_a_bare_id_is_a_digest_and_tags_default_to_latest():
    assert parse_any("b" * 64) == "sha256:" + "b" * 64
    assert str(parse_normalized("x").tag_name_only()) == "docker.io/library/x:latest"
    with pytest.raises(InvalidParameter, match="^invalid tag format$"):
        parse_normalized("x").with_tag("-1")


@pytest.mark.parametrize("pattern,name,matches", [
    ("busy*", "busybox:latest", True), ("*", "busybox:latest", True), ("*", "user/app:1", False),
    ("*/*", "user/app:1", True), ("user/app", "user/app:1", True), ("[a-c]*", "busybox", True),
    ("[^a-c]*", "busybox", False), ("busybox:?atest", "busybox:latest", True)
])
def test_reference_filter_globs_are_go_path_match(pattern, name, matches):
    assert familiar_match(pattern, parse_normalized(name)) is matches


def test_a_bad_glob_is_an_invalid_parameter_and_a_backslash_escapes():
    assert go_path_match(r"busy\*", "busy*") and not go_path_match(r"busy\*", "busybox")
    with pytest.raises(InvalidParameter, match="^syntax error in pattern$"):
        go_path_match("[a", "a")
