import pytest

import crucible_artifact

deps = crucible_artifact.module("deps")


def build_order(graph):
    return deps.build_order(graph)


def assert_valid(graph, order):
    nodes = set(graph)
    for ds in graph.values():
        nodes.update(ds)
    assert sorted(order) == sorted(nodes)
    pos = {n: i for i, n in enumerate(order)}
    for task, ds in graph.items():
        for d in ds:
            assert pos[d] < pos[task], (d, task)


def assert_is_cycle(graph, cycle):
    assert cycle, "empty cycle"
    assert len(set(cycle)) == len(cycle), "repeated node in %r" % (cycle,)
    for i, n in enumerate(cycle):
        nxt = cycle[(i + 1) % len(cycle)]
        assert nxt in graph.get(n, []), "%r does not depend on %r" % (n, nxt)


def test_chain():
    assert build_order({"c": ["b"], "b": ["a"], "a": []}) == ["a", "b", "c"]


def test_empty_graph():
    assert build_order({}) == []


def test_valid_order_diamond():
    graph = {"app": ["lib", "util"], "lib": ["core"], "util": ["core"], "core": []}
    assert_valid(graph, build_order(graph))


def test_deterministic_smallest_first():
    graph = {"app": ["lib", "util"], "util": ["core"], "lib": ["core"], "core": [], "docs": []}
    assert build_order(graph) == ["core", "docs", "lib", "util", "app"]
    graph2 = {"z": [], "y": [], "x": ["z"]}
    assert build_order(graph2) == ["y", "z", "x"]


def test_independent_of_insertion_order():
    a = {"b": ["a"], "d": ["c"], "a": [], "c": []}
    b = {"c": [], "a": [], "d": ["c"], "b": ["a"]}
    assert build_order(a) == build_order(b) == ["a", "b", "c", "d"]


def test_dependencies_without_own_entry():
    graph = {"app": ["zlib", "lib"], "lib": ["libc"]}
    order = build_order(graph)
    assert order == ["libc", "lib", "zlib", "app"]


def test_cycle_raises_cycle_error():
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": []}
    with pytest.raises(deps.CycleError) as info:
        build_order(graph)
    assert isinstance(info.value, ValueError)
    assert sorted(info.value.cycle) == ["a", "b", "c"]
    assert_is_cycle(graph, info.value.cycle)


def test_self_dependency_is_cycle():
    graph = {"a": ["a"], "b": []}
    with pytest.raises(deps.CycleError) as info:
        build_order(graph)
    assert info.value.cycle == ["a"]


def test_cycle_behind_other_nodes():
    graph = {"app": ["lib"], "lib": ["x"], "x": ["y"], "y": ["z", "base"], "z": ["x"], "base": []}
    with pytest.raises(deps.CycleError) as info:
        build_order(graph)
    assert sorted(info.value.cycle) == ["x", "y", "z"]
    assert_is_cycle(graph, info.value.cycle)


def test_deep_chain():
    n = 5000
    graph = {"t%05d" % i: ["t%05d" % (i - 1)] for i in range(n - 1, 0, -1)}
    order = build_order(graph)
    assert order == ["t%05d" % i for i in range(n)]
