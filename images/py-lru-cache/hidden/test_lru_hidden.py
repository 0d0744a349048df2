import pytest

import crucible_artifact

lru = crucible_artifact.module("lru")


def LRUCache(*args):
    return lru.LRUCache(*args)


def test_basic_put_get():
    c = LRUCache(3)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1
    assert c.get("missing", "d") == "d"
    assert "b" in c and "x" not in c


def test_insertion_order_eviction():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    c.put("c", 3)
    assert "a" not in c
    assert c.get("b") == 2 and c.get("c") == 3


def test_get_refreshes_recency():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1
    c.put("c", 3)
    assert "a" in c
    assert "b" not in c
    assert c.keys() == ["a", "c"]


def test_update_existing_does_not_evict():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    c.put("a", 10)
    assert len(c) == 2
    assert c.get("a") == 10
    assert c.get("b") == 2
    assert c.keys() == ["a", "b"]


def test_update_refreshes_recency():
    c = LRUCache(3)
    c.put("a", 1)
    c.put("b", 2)
    c.put("a", 10)
    c.put("c", 3)
    c.put("d", 4)
    assert "b" not in c
    assert c.get("a") == 10
    assert c.keys() == ["c", "d", "a"]


def test_keys_never_duplicated():
    c = LRUCache(3)
    for i in range(10):
        c.put("k", i)
    assert c.keys() == ["k"]
    assert len(c) == 1


def test_miss_does_not_change_order():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    c.get("nope")
    c.put("c", 3)
    assert c.keys() == ["b", "c"]


def test_peek_does_not_refresh():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.peek("a") == 1
    assert c.peek("zz") is None
    assert c.peek("zz", 5) == 5
    c.put("c", 3)
    assert "a" not in c


def test_invalid_capacity():
    for bad in (0, -1):
        with pytest.raises(ValueError):
            LRUCache(bad)
    assert len(LRUCache(1)) == 0
