"""Label updates by field mask, written once for every labelled object."""
import pytest

from containerd_py import errors, labels


def test_without_a_mask_every_label_is_replaced_and_empty_values_dropped():
    assert labels.update({"a": "1", "b": "2"}, {"c": "3", "d": ""}, [], "thing") == {"c": "3"}


def test_a_mask_changes_only_the_labels_it_names():
    assert labels.update({"a": "1", "b": "2"}, {"a": "9", "c": "3"}, ["labels.a", "labels.b"], "thing") == {"a": "9"}
    assert labels.update({"a": "1"}, {"c": "3"}, ["labels"], "thing") == {"c": "3"}


def test_a_path_other_than_labels_is_refused_naming_the_object():
    with pytest.raises(errors.InvalidArgument, match="cannot update \"size\" field on content info \"x\""):
        labels.update({}, {}, ["labels.a", "size"], 'content info "x"')


def test_merge_leaves_other_paths_to_the_caller():
    assert labels.merge({"a": "1"}, {"b": "2"}, ["labels.b", "image"]) == ({"a": "1", "b": "2"}, ["image"])
