# The workspace's tests/test_lru.py, run as the checker against the artifact.
import crucible_artifact

lru = crucible_artifact.module("lru")


def test_put_get():
    c = lru.LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1
    assert c.get("b") == 2
    assert c.get("zzz") is None
    assert c.get("zzz", 0) == 0


def test_evicts_when_full():
    c = lru.LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    c.put("c", 3)
    assert len(c) == 2
    assert "c" in c
