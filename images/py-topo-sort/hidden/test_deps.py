# The repository's tests/test_deps.py, run as the checker against the artifact.
import crucible_artifact

deps = crucible_artifact.module("deps")


def test_chain():
    assert deps.build_order({"c": ["b"], "b": ["a"], "a": []}) == ["a", "b", "c"]


def test_diamond_is_valid():
    graph = {"app": ["lib", "util"], "lib": ["core"], "util": ["core"], "core": []}
    order = deps.build_order(graph)
    assert sorted(order) == sorted(graph)
    for task, ds in graph.items():
        for dep in ds:
            assert order.index(dep) < order.index(task)
