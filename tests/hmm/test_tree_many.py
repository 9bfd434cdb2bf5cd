"""`ContextDependency.pdfs_for_many` (all windows in one numpy pass) against `pdfs_for`, one window
at a time, on random event-map trees with table, split and constant nodes, and its errors."""

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.hmm import ContextDependency
from kaldilite.hmm.tree import PDF_CLASS

NUM_CLASSES = {1: 5, 2: 3, 3: 3, 4: 3, 5: 1, 7: 2}  # phone 6 absent: ids need not be contiguous


def random_tree(rng, context_width=3, central_position=1):
    """A random tree over NUM_CLASSES: a table on the central phone, then on the pdf class, then
    random splits on the other positions and the pdf class; leaves reuse earlier pdfs at times
    (shared pdfs, as tree clustering makes them), numbered contiguously."""
    used = [0]
    others = [k for k in range(context_width) if k != central_position] + [PDF_CLASS]

    def leaf():
        if used[0] and rng.random() < 0.3:
            return ["const", int(rng.integers(used[0]))]
        used[0] += 1
        return ["const", used[0] - 1]

    def subtree(depth):
        if depth == 0 or rng.random() < 0.25:
            return leaf()
        key = int(rng.choice(others))
        values = [0, *NUM_CLASSES] if key != PDF_CLASS else list(range(5))
        yes = sorted(int(v) for v in rng.choice(values, size=int(rng.integers(1, len(values))), replace=False))
        return ["split", key, yes, subtree(depth - 1), subtree(depth - 1)]

    table = {p: ["table", PDF_CLASS, {c: subtree(4) for c in range(n)}] for p, n in NUM_CLASSES.items()}
    return ContextDependency(context_width, central_position, ["table", central_position, table], NUM_CLASSES)


def random_windows(rng, tree, count):
    windows = rng.choice([0, *NUM_CLASSES], size=(count, tree.context_width))
    windows[:, tree.central_position] = rng.choice(list(NUM_CLASSES), size=count)
    return windows


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [(3, 1), (2, 1), (1, 0)])
def test_many_windows_at_once_answer_as_one_window_at_a_time(seed, shape):
    rng = np.random.default_rng(seed)
    tree = random_tree(rng, *shape)
    windows = random_windows(rng, tree, 500)
    many = tree.pdfs_for_many(windows)
    assert many.shape == (500, max(NUM_CLASSES.values()))
    for window, row in zip(windows.tolist(), many.tolist()):
        expected = tree.pdfs_for(tuple(window))
        assert row == expected + [-1] * (many.shape[1] - len(expected))


def test_no_windows_give_an_empty_table():
    tree = random_tree(np.random.default_rng(0))
    assert tree.pdfs_for_many(np.zeros((0, 3), np.int64)).shape[0] == 0
    # also when the root is a split, whose yes-set test looks at the values' range
    split_root = ContextDependency(3, 1, ["split", 0, [1, 2], ["const", 0], ["const", 1]], {1: 1, 2: 1})
    assert split_root.pdfs_for_many(np.zeros((0, 3), np.int64)).shape[0] == 0
    assert split_root.pdfs_for_many([[1, 1, 2], [0, 2, 1]]).tolist() == [[0], [1]]


def test_a_phone_outside_the_tree_is_named():
    tree = random_tree(np.random.default_rng(1))
    with pytest.raises(InputError, match="phone 6 is not covered"):
        tree.pdfs_for_many([[1, 2, 3], [0, 6, 1]])


def test_a_window_the_tree_has_no_answer_for_is_named_like_pdfs_for():
    # Phone 2's table on its left neighbour lists only silence (1) and the utterance start (0).
    table = {p: ["const", 0] for p in NUM_CLASSES}
    table[2] = ["table", 0, {0: ["const", 1], 1: ["const", 2]}]
    tree = ContextDependency(3, 1, ["table", 1, table], NUM_CLASSES)
    assert tree.pdfs_for_many([[1, 2, 0], [0, 2, 3]])[:, :3].tolist() == [[2, 2, 2], [1, 1, 1]]
    with pytest.raises(InputError) as many:
        tree.pdfs_for_many([[1, 2, 0], [3, 2, 4]])
    with pytest.raises(InputError) as one:
        tree.pdfs_for((3, 2, 4))
    assert str(many.value) == str(one.value) and "(3, 2, 4) pdf class 0" in str(one.value)
