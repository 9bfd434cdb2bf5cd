"""The small hand-built denominator lattice and its brute-force path enumeration, shared by
tests/decode/test_denlat.py and tests/nnet/test_nnet_discriminative.py (tests/ is on sys.path
through tests/conftest.py)."""

import numpy as np

from kaldilite.decode.denlat import DenLattice


def tiny_lattice():
    # nodes: 0 -(t1)-> 2 -(t2)-> 3 ; 0 -(t3)-> 1 -(eps)-> 2 ; 1 -(t4)-> 3 ; 2 -(t5)-> 4 ; 3, 4 final
    # frames: node 0 at 0, nodes 1 and 2 at 1, nodes 3 and 4 at 2; five paths
    src = np.array([0, 0, 1, 1, 2, 2])
    dst = np.array([2, 1, 2, 3, 3, 4])
    tid = np.array([1, 3, 0, 4, 2, 5])
    frame = np.array([0, 0, 1, 1, 1, 1])
    graph = np.array([0.5, 1.0, 0.3, 0.1, 0.2, 0.7])
    final = np.array([np.inf, np.inf, np.inf, 0.4, 1.5])
    # the decoder gives links in any order: sorted by source node here, as DenLattice.from_raw does
    return DenLattice(5, src, dst, tid, frame, graph, final, 2)


def enumerate_paths(lat, link_cost):
    """[(links, total cost)] for every path from node 0 to a final node."""
    paths = []

    def walk(node, links, cost):
        if np.isfinite(lat.final[node]):
            paths.append((links, cost + lat.final[node]))
        for k in np.flatnonzero(lat.src == node):
            walk(lat.dst[k], links + [k], cost + link_cost[k])

    walk(0, [], 0.0)
    return paths
