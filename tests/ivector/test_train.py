"""The PCA of get_pca_transform.sh against the singular value decomposition of the centred frames."""

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.ivector.train import pca_transform


def test_pca_keeps_the_top_singular_directions_and_removes_the_mean():
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(2000, 6)) @ rng.normal(size=(6, 6)) + rng.normal(size=6) * 5
    transform = pca_transform(frames, 3)
    assert transform.shape == (3, 7)
    projected = frames @ transform[:, :-1].T + transform[:, -1]
    np.testing.assert_allclose(projected.mean(axis=0), 0.0, atol=1e-9)
    centred = frames - frames.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.abs(transform[:, :-1] @ vt[:3].T), np.eye(3), atol=1e-8)
    np.testing.assert_allclose(np.cov(projected, rowvar=False, bias=True), np.diag(singular[:3] ** 2 / len(frames)),
                               atol=1e-8)
    with pytest.raises(InputError, match="--pca-dim 7"):
        pca_transform(frames, 7)
