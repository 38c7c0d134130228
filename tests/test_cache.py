"""Start-up caches: the cached vocabulary and name index equal freshly derived ones, and a bad cache is rebuilt."""

import dataclasses
import os

import numpy as np
import pytest

from safetycheck import cache, matching
from safetycheck.knowledge import vocabulary
from safetycheck.matching import Matcher
from safetycheck.parsing import parse_line

NAMES = ["Eliquis 5 mg PO BID", "ASA 81mg daily", "lisinoprl 10 mg", "metfromin 500 mg BID",
         "esomeprazoel", "hydroxazine", "piperacilin/tazobactam", "Bactrim DS 1 tab", "zorbatrexine 10 mg"]


def load_vocabulary(cache_dir):
    # The lru_cache in front of _load would hand back the first result; each call here must load.
    return vocabulary._load.__wrapped__(*vocabulary.locate(), str(cache_dir))


def forbid(monkeypatch, module, name):
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} ran although the cache should have been used")

    monkeypatch.setattr(module, name, fail)


def count_calls(monkeypatch, module, name, result=None):
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs) if result is None else result

    monkeypatch.setattr(module, name, spy)
    return calls


def damage(path):
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))


def same_index(a: Matcher, b: Matcher) -> bool:
    return (a.keys == b.keys and a.postings.keys() == b.postings.keys()
            and all(np.array_equal(a.postings[g], b.postings[g]) and b.postings[g].dtype == np.int32
                    for g in a.postings))


@pytest.fixture(scope="module")
def vocabulary_cache(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vocabulary-cache")
    load_vocabulary(directory)
    return directory / vocabulary.CACHE_FILE


@pytest.fixture(scope="module")
def index_cache(kb, tmp_path_factory):
    directory = tmp_path_factory.mktemp("index-cache")
    Matcher(kb, cache_dir=directory)
    return directory / matching.INDEX_FILE


@pytest.fixture(scope="module")
def uncached_matcher(kb):
    return Matcher(kb)


def copy_to(source, directory):
    directory.mkdir(exist_ok=True)
    (directory / source.name).write_bytes(source.read_bytes())
    return directory


# -- vocabulary ---------------------------------------------------------------------------------
def test_cached_vocabulary_equals_the_derived_one(vocabulary_cache, tmp_path, monkeypatch):
    fresh = vocabulary.load()
    forbid(monkeypatch, vocabulary, "_build")
    cached = load_vocabulary(copy_to(vocabulary_cache, tmp_path))
    assert cached == fresh
    # Order too: the matcher numbers its keys in the order of the names.
    assert list(cached.names) == list(fresh.names)
    assert list(cached.ids) == list(fresh.ids)


def test_damaged_vocabulary_cache_is_rebuilt(vocabulary_cache, tmp_path, monkeypatch):
    directory = copy_to(vocabulary_cache, tmp_path)
    damage(directory / vocabulary.CACHE_FILE)
    # Deriving it again is tested above; standing in the known result keeps this test fast.
    calls = count_calls(monkeypatch, vocabulary, "_build", result=vocabulary.load())
    assert load_vocabulary(directory) == vocabulary.load()
    assert calls == [1]
    assert (directory / vocabulary.CACHE_FILE).read_bytes() == vocabulary_cache.read_bytes()


def test_vocabulary_cache_of_another_format_is_ignored(vocabulary_cache, tmp_path, monkeypatch):
    directory = copy_to(vocabulary_cache, tmp_path)
    monkeypatch.setattr(vocabulary, "CACHE_FORMAT", vocabulary.CACHE_FORMAT + 1)
    calls = count_calls(monkeypatch, vocabulary, "_build", result=vocabulary.load())
    assert load_vocabulary(directory) == vocabulary.load()
    assert calls == [1]


# -- matcher index ------------------------------------------------------------------------------
def test_cached_index_gives_the_same_matches(kb, index_cache, uncached_matcher, tmp_path, monkeypatch):
    forbid(monkeypatch, matching, "_build_index")
    cached = Matcher(kb, cache_dir=copy_to(index_cache, tmp_path))
    assert same_index(uncached_matcher, cached)
    for text in NAMES:
        assert cached.match(parse_line(text)) == uncached_matcher.match(parse_line(text)), text


def test_damaged_index_cache_is_rebuilt(kb, index_cache, uncached_matcher, tmp_path, monkeypatch):
    directory = copy_to(index_cache, tmp_path)
    damage(directory / matching.INDEX_FILE)
    calls = count_calls(monkeypatch, matching, "_build_index")
    assert same_index(uncached_matcher, Matcher(kb, cache_dir=directory))
    assert calls == [1]
    forbid(monkeypatch, matching, "_build_index")
    assert same_index(uncached_matcher, Matcher(kb, cache_dir=directory))


def test_index_cache_of_another_knowledge_base_version_is_ignored(kb, index_cache, tmp_path, monkeypatch):
    directory = copy_to(index_cache, tmp_path)
    calls = count_calls(monkeypatch, matching, "_build_index")
    Matcher(dataclasses.replace(kb, version="sha256:another"), cache_dir=directory)
    assert calls == [1]


def test_index_cache_for_other_names_is_ignored(kb, index_cache, tmp_path, monkeypatch):
    # Same kb.version, different names (the loader's code changed): the index must not be reused.
    directory = copy_to(index_cache, tmp_path)
    names = dict(kb.names)
    names.pop(next(iter(names)))
    calls = count_calls(monkeypatch, matching, "_build_index")
    matcher = Matcher(dataclasses.replace(kb, names=names), cache_dir=directory)
    assert calls == [1]
    assert matcher.keys == [k for k in names if len(k) >= 3]


# -- cache files --------------------------------------------------------------------------------
def test_unwritable_cache_dir_means_no_cache(kb, uncached_matcher, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    directory = blocker / "cache"  # cannot be created, whoever runs the tests (root included)
    assert same_index(uncached_matcher, Matcher(kb, cache_dir=directory))
    assert cache.read(directory, "x", "k") is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_read_only_cache_dir_means_no_cache(tmp_path):
    tmp_path.chmod(0o555)
    try:
        cache.write(tmp_path, "x", "k", b"payload")
        assert cache.read(tmp_path, "x", "k") is None
    finally:
        tmp_path.chmod(0o755)


def test_write_is_atomic_and_keyed(tmp_path):
    cache.write(tmp_path, "x", "key one", b"payload\nwith lines")
    assert [p.name for p in tmp_path.iterdir()] == ["x"]  # no temp file left behind
    assert cache.read(tmp_path, "x", "key one") == b"payload\nwith lines"
    assert cache.read(tmp_path, "x", "key two") is None
    (tmp_path / "x").write_bytes(b"truncated")
    assert cache.read(tmp_path, "x", "key one") is None


def test_no_cache_dir_writes_nothing(tmp_path):
    cache.write(None, "x", "k", b"payload")
    assert cache.read(None, "x", "k") is None
