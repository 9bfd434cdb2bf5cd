"""A known generating model for the i-vector tests: a GMM whose means are shifted by T w per utterance."""

import dataclasses

import numpy as np
import pytest

from kaldilite.gmm.am import AmDiagGmm


@dataclasses.dataclass
class GeneratedCorpus:
    means: np.ndarray  # C x D
    variances: np.ndarray  # C x D, the within-utterance (residual) variances
    subspace: np.ndarray  # C x D x K, the true T
    ivectors: np.ndarray  # U x K, the true w ~ N(0, I)
    utterances: list  # U arrays of T x D frames
    labels: list  # U arrays of each frame's true component

    def oracle_ubm(self):
        """The marginal GMM over utterances (the UBM an ideal trainer would find)."""
        num_gauss = self.means.shape[0]
        return AmDiagGmm(self.means, self.variances + (self.subspace ** 2).sum(axis=2),
                         np.full(num_gauss, -np.log(num_gauss)), np.array([0, num_gauss]))


def generate_corpus(seed=1, num_gauss=8, dim=4, rank=2, num_utts=300, frames=200, spread=10.0, residual_var=0.5):
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, spread, (num_gauss, dim))
    subspace = rng.normal(0.0, 1.0, (num_gauss, dim, rank))
    variances = np.full((num_gauss, dim), residual_var)
    ivectors = rng.standard_normal((num_utts, rank))
    utterances, labels = [], []
    for w in ivectors:
        comp = rng.integers(0, num_gauss, frames)
        shifted = means + np.einsum("cdk,k->cd", subspace, w)
        utterances.append(shifted[comp] + rng.standard_normal((frames, dim)) * np.sqrt(variances[comp]))
        labels.append(comp)
    return GeneratedCorpus(means, variances, subspace, ivectors, utterances, labels)


@pytest.fixture(scope="session")
def corpus():
    return generate_corpus()


@pytest.fixture(scope="session")
def system(corpus):
    """(UBM, extractor) for the online-extraction tests: the corpus' oracle UBM and a rank-3 extractor trained
    3 iterations on its first 100 utterances (statistics scaled by 0.1, so the prior matters)."""
    from kaldilite.ivector.extractor import IvectorExtractor, TrainingStatistics, train_extractor
    from kaldilite.ivector.ubm import gselect_posteriors

    ubm = corpus.oracle_ubm()
    items = [(x, gselect_posteriors(ubm, x)[0] * 0.1) for x in corpus.utterances[:100]]
    init = IvectorExtractor.init_from_ubm(ubm.means, ubm.variances, np.exp(ubm.log_weights), 3)
    extractor, _ = train_extractor(init, TrainingStatistics.from_utterances(items), num_iters=3)
    return ubm, extractor


@pytest.fixture(scope="session")
def make_corpus():
    """`generate_corpus` for tests that need their own draw."""
    return generate_corpus
