"""Clustering of NeuronCore-supported nodes: acyclic and convex by construction, linear time.

Every node gets a level L with L(v) >= L(u) + [u runs on the host] for every edge u -> v, so levels
never decrease along a path and strictly increase after a host node. Clusters are the connected
components of supported nodes joined by edges of equal level. A path that left a cluster and came
back would have to keep its level, hence pass no host node, hence consist of supported nodes joined
by equal-level edges, hence lie inside the cluster: clusters are convex, and the graph of clusters
and host nodes is acyclic. Two level assignments are tried (as soon as possible, as late as
possible); the one giving fewer clusters wins.
"""
from __future__ import annotations


def _edges(nodes) -> tuple[list, list]:
    index = {id(n): i for i, n in enumerate(nodes)}
    preds = [[] for _ in nodes]
    succs = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        seen = set()
        for v in node.inputs:
            if v is None or v.producer is None:
                continue
            j = index.get(id(v.producer))
            if j is not None and j not in seen:
                seen.add(j)
                preds[i].append(j)
                succs[j].append(i)
    return preds, succs


def _levels_asap(preds, host) -> list:
    level = [0] * len(preds)
    for i, ps in enumerate(preds):
        for p in ps:
            level[i] = max(level[i], level[p] + host[p])
    return level


def _levels_alap(succs, host, asap) -> list:
    level = list(asap)
    for i in range(len(succs) - 1, -1, -1):
        if succs[i]:
            level[i] = min(level[s] for s in succs[i]) - host[i]
    return level


def _components(preds, supported, level) -> list:
    parent = list(range(len(preds)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for i, ps in enumerate(preds):
        if not supported[i]:
            continue
        for p in ps:
            if supported[p] and level[p] == level[i]:
                a, b = find(p), find(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict = {}
    for i in range(len(preds)):
        if supported[i]:
            groups.setdefault(find(i), []).append(i)
    return [groups[k] for k in sorted(groups)]


def cluster_indices(nodes, supported: list) -> list:
    """Clusters as sorted lists of node indices (nodes in topological order)."""
    preds, succs = _edges(nodes)
    host = [0 if s else 1 for s in supported]
    asap = _levels_asap(preds, host)
    best = _components(preds, supported, asap)
    alap = _components(preds, supported, _levels_alap(succs, host, asap))
    return alap if len(alap) < len(best) else best


def edges(nodes) -> tuple[list, list]:
    """(predecessors, successors) of each node by index."""
    return _edges(nodes)
