"""engine.store's names and references: reserved with the record, freed with
it, renamed; a reference resolved as dockerd resolves it, in its words
(measured against dockerd 20.10)."""
import threading

import pytest

from engine.errors import Conflict, InvalidParameter, NotFound, System, http_status
from engine.store import Container, ContainerStore, new_id
from engine.store import containers as store_module


@pytest.fixture
def store(tmp_path):
    store = ContainerStore(str(tmp_path / "containers"))
    store.load()
    return store


def added(store, name=None, container_id=None):
    container_id = container_id or new_id()
    record = Container(id=container_id, name=store.reserve_name(container_id, name), image="sha256:" + "ab" * 32,
                       config={}, host_config={})
    store.add(record)
    return record


def conflict_message(name, holder):
    return (f'Conflict. The container name "{name}" is already in use by container "{holder}". '
            "You have to remove (or rename) that container to be able to reuse that name.")


@pytest.mark.parametrize("again", ["web", "/web"])
def test_a_taken_name_is_a_409_in_dockerds_words(store, again):
    web = added(store, "web")
    with pytest.raises(Conflict) as info:
        store.reserve_name(new_id(), again)
    assert str(info.value) == conflict_message("/web", web.id) and http_status(info.value) == 409


def test_a_reserved_name_is_taken_before_its_record_exists(store):
    first = new_id()
    assert store.reserve_name(first, "web") == "/web"
    with pytest.raises(Conflict, match=first):
        store.reserve_name(new_id(), "web")
    with pytest.raises(NotFound):
        store.get("web")  # reserved is not created
    store.release_name("/web", first)
    assert store.reserve_name(new_id(), "web") == "/web"


def test_release_does_not_free_a_name_in_use(store):
    web = added(store, "web")
    store.release_name("web", web.id)
    store.release_name("web", new_id())
    with pytest.raises(Conflict):
        store.reserve_name(new_id(), "web")


def test_an_invalid_name_is_refused_in_dockerds_words(store):
    with pytest.raises(InvalidParameter, match=r"^Invalid container name \(a b\), only"):
        store.reserve_name(new_id(), "a b")


def test_generated_names_are_free_ones(store, monkeypatch):
    picks = iter(["happy_turing", "happy_turing3", "calm_hopper"])
    monkeypatch.setattr(store_module.names, "random_name", lambda retry, rng=None: next(picks))
    added(store, "happy_turing")
    assert added(store).name == "/happy_turing3"
    assert added(store).name == "/calm_hopper"


def test_names_are_freed_on_remove_and_not_before(store, tmp_path):
    web = added(store, "web")
    store.remove(web.id)
    with pytest.raises(NotFound, match="^No such container: web$"):
        store.get("web")
    assert added(store, "web").name == "/web"
    again = ContainerStore(store.root)
    again.load()
    with pytest.raises(Conflict):
        again.reserve_name(new_id(), "web")  # a reload knows the name from the record


def test_rename_moves_the_name_on_disk_and_frees_the_old(store):
    web = added(store, "web")
    assert store.rename(web.id, "api") == "/web"
    assert store.get("api") is web and web.name == "/api"
    assert added(store, "web").name == "/web"
    again = ContainerStore(store.root)
    again.load()
    assert again.get("api").id == web.id


@pytest.mark.parametrize("new, kind, message", [
    ("", InvalidParameter, "Neither old nor new names may be empty"),
    ("web", InvalidParameter, "Renaming a container with the same name as its current name"),
    ("/web", InvalidParameter, "Renaming a container with the same name as its current name"),
    ("a b", InvalidParameter, "Error when allocating new name: Invalid container name (/a b), only "
                              "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
])
def test_rename_refusals_in_dockerds_words(store, new, kind, message):
    web = added(store, "web")
    with pytest.raises(kind) as info:
        store.rename(web.id, new)
    assert str(info.value) == message and http_status(info.value) == 400
    assert store.get("web") is web


def test_rename_to_a_taken_name_is_a_conflict_and_changes_nothing(store):
    web, api = added(store, "web"), added(store, "api")
    with pytest.raises(Conflict) as info:
        store.rename(web.id, "api")
    assert str(info.value) == "Error when allocating new name: " + conflict_message("/api", api.id)
    assert store.get("web") is web and store.get("api") is api


def test_a_rename_that_cannot_be_saved_keeps_the_old_name(store, monkeypatch):
    web = added(store, "web")

    def full(path, value):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "write_json_atomically", full)
    with pytest.raises(System):
        store.rename(web.id, "api")
    assert web.name == "/web" and store.get("web") is web
    with pytest.raises(NotFound):
        store.get("api")
    monkeypatch.undo()
    assert added(store, "api").name == "/api"


# --- references -------------------------------------------------------------

def test_a_reference_is_a_full_id_a_name_or_a_unique_prefix(store):
    web = added(store, "web", "abc1" + "0" * 60)
    other = added(store, "other", "abd2" + "0" * 60)
    assert store.get(web.id) is web
    assert store.get("web") is web and store.get("/web") is web
    assert store.get("abc") is web and store.get("abd2") is other


def test_an_exact_name_wins_over_a_prefix(store):
    prefixed = added(store, "x1", "beef" + "0" * 60)
    named = added(store, "beef")
    assert store.get("beef") is named and store.get("bee") is prefixed


def test_a_full_id_wins_over_a_name_that_looks_like_it(store):
    target = added(store, "tt", "cafe" + "1" * 60)
    added(store, "cafe" + "1" * 60)
    assert store.get(target.id) is target


def test_an_ambiguous_prefix_is_dockerds_error(store):
    added(store, "aa", "7" + "a" * 63)
    added(store, "bb", "7" + "b" * 63)
    with pytest.raises(System) as info:
        store.get("7")
    assert str(info.value) == "Multiple IDs found with provided prefix: 7" and http_status(info.value) == 500


def test_an_unknown_reference_is_a_404(store):
    added(store, "web")
    with pytest.raises(NotFound) as info:
        store.get("nosuch")
    assert str(info.value) == "No such container: nosuch" and http_status(info.value) == 404


def test_an_empty_reference_is_an_invalid_parameter(store):
    with pytest.raises(InvalidParameter) as info:
        store.get("")
    assert str(info.value) == 'invalid name or ID supplied: ""' and http_status(info.value) == 400


def test_of_many_creates_racing_for_one_name_exactly_one_gets_it(store):
    barrier, outcomes = threading.Barrier(8), []

    def create():
        barrier.wait()
        try:
            outcomes.append(added(store, "web").id)
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1 and outcomes.count("conflict") == 7 and store.get("web").id == winners[0]


def test_two_records_on_disk_with_one_name_load_one_and_report_the_other(store, tmp_path):
    first = added(store, "web", "1" * 64)
    second = added(store, "api", "2" * 64)
    path = tmp_path / "containers" / second.id / "config.v2.json"
    path.write_text(path.read_text().replace('"/api"', '"/web"'))
    again = ContainerStore(store.root)
    assert again.load() == [f'failed to load container {second.id}: name "/web" is already used by {first.id}']
    assert again.get("web").id == first.id
