"""`Nnet`: a feed-forward stack of components, as Kaldi's nnet2 `Nnet` (src/nnet2/nnet-nnet.h).

The p-norm topology of steps/nnet2/train_pnorm_simple2.sh is built by `Nnet.pnorm`:
(affine -> p-norm -> normalize) x hidden layers -> affine -> softmax, plus a sum-group
component once the softmax has been mixed up (`mix_up`, nnet2's MixupNnet). Forward passes
are float32 BLAS products; `log_posteriors` is what decoding and priors use.
"""

from __future__ import annotations

import logging

import numpy as np

from kaldilite.errors import DimensionMismatchError, InputError
from kaldilite.nnet.components import (AffineComponent, NormalizeComponent, PnormComponent, SoftmaxComponent,
                                       SumGroupComponent, softmax_cross_entropy)

log = logging.getLogger(__name__)

_SIMPLE = {"pnorm": PnormComponent, "normalize": NormalizeComponent, "softmax": SoftmaxComponent}


class Nnet:
    """Components in order; the last is a softmax, or a softmax followed by a sum-group."""

    def __init__(self, components):
        self.components = list(components)
        kinds = [c.kind for c in self.components]
        if "softmax" not in kinds[-2:] or kinds[-1] not in ("softmax", "sum_group"):
            raise InputError(f"nnet: must end in a softmax (optionally + sum-group), got {kinds[-2:]}")
        if self.components[self._softmax_index - 1].kind != "affine":
            raise InputError("nnet: the softmax must follow an affine component")

    @classmethod
    def pnorm(cls, input_dim, num_pdfs, *, num_hidden_layers=2, pnorm_input_dim=1000, pnorm_output_dim=100,
              p=2.0, bias_stddev=0.5, rng=None):
        """A fresh p-norm network with Kaldi's nnet2 initialisation (final layer starts at zero)."""
        rng = rng if rng is not None else np.random.default_rng(0)
        if num_hidden_layers < 1:
            raise InputError(f"nnet: need at least one hidden layer, got {num_hidden_layers}")
        components, dim = [], input_dim
        for _ in range(num_hidden_layers):
            components.append(AffineComponent.random(dim, pnorm_input_dim, rng, bias_stddev=bias_stddev))
            components.append(PnormComponent(pnorm_input_dim, pnorm_output_dim, p))
            components.append(NormalizeComponent(pnorm_output_dim))
            dim = pnorm_output_dim
        # nnet2 initialises the output layer to zero, so training starts from uniform posteriors.
        components.append(AffineComponent(np.zeros((num_pdfs, dim)), np.zeros(num_pdfs)))
        components.append(SoftmaxComponent(num_pdfs))
        return cls(components)

    # ------------------------------------------------------------------ structure
    @property
    def _softmax_index(self):
        return next(i for i, c in enumerate(self.components) if c.kind == "softmax")

    @property
    def input_dim(self):
        return self.components[0].input_dim

    @property
    def output_affine(self):
        return self.components[self._softmax_index - 1]

    @property
    def sum_group(self):
        last = self.components[-1]
        return last if last.kind == "sum_group" else None

    @property
    def num_pdfs(self):
        return self.components[-1].output_dim if self.sum_group else self.output_affine.output_dim

    @property
    def softmax_dim(self):
        return self.output_affine.output_dim

    def affine_components(self):
        return [c for c in self.components if c.kind == "affine"]

    def num_params(self):
        return sum(c.weight.size + c.bias.size for c in self.affine_components())

    def describe(self):
        hidden = [c for c in self.components if c.kind == "pnorm"]
        text = f"{len(hidden)} p-norm hidden layers"
        if hidden:
            text += f" ({hidden[0].input_dim} -> {hidden[0].output_dim}, p={hidden[0].p:g})"
        text += (f", input {self.input_dim}, softmax {self.softmax_dim}, {self.num_pdfs} pdfs, "
                 f"{self.num_params()} params")
        return text

    # ------------------------------------------------------------------ computation
    def check_input(self, feats, where="features"):
        if feats.ndim != 2 or feats.shape[1] != self.input_dim:
            got = feats.shape[1] if feats.ndim == 2 else f"shape {feats.shape}"
            raise DimensionMismatchError(f"{where}: feature dimension is {got} but the network expects "
                                         f"{self.input_dim}")

    def logits(self, feats, keep=False):
        """Output of the last affine component (the softmax input)."""
        x = np.asarray(feats, dtype=np.float32)
        for component in self.components[:self._softmax_index]:
            x = component.forward(x, keep=keep)
        return x

    def posteriors(self, feats):
        """(T x num_pdfs) pdf posteriors (sub-classes summed after mix-up)."""
        x = self.components[self._softmax_index].forward(self.logits(feats))
        return x if self.sum_group is None else self.sum_group.forward(x)

    def log_posteriors(self, feats, floor=1e-20):
        """log of `posteriors`, floored at `floor` as Kaldi's DecodableAmNnet does."""
        return np.log(np.maximum(self.posteriors(feats), floor))

    def train_step_gradients(self, feats, targets, dropout_proportion=0.0, rng=None):
        """Forward + backward on one minibatch; returns (objective sum, correct frames).

        Leaves the gradients of the *negative* log-likelihood in each affine component.
        `dropout_proportion` > 0 (Kaldi's DropoutComponent dropout-proportion, as nnet3 places it
        after each hidden layer) zeroes that fraction of each hidden layer's outputs, drawn from
        `rng`, and scales the rest by 1 / (1 - proportion), so the network used in decoding (no
        dropout) sees inputs of the same expected size; the gradient flows through the same mask.
        """
        logits, masks = self.train_forward(feats, dropout_proportion, rng)
        objective, correct, grad = softmax_cross_entropy(logits, targets, self.sum_group)
        self.train_backward(grad, masks)
        return objective, correct

    def train_forward(self, feats, dropout_proportion=0.0, rng=None):
        """The training half of `train_step_gradients` before the loss: (logits, dropout masks), each
        component keeping its input for `train_backward` (ensemble training needs every member's
        output before any member's gradient)."""
        if not 0.0 <= dropout_proportion < 1.0:
            raise InputError(f"nnet: dropout proportion must be in [0, 1), got {dropout_proportion}")
        x = np.asarray(feats, dtype=np.float32)
        masks = {}
        for index, component in enumerate(self.components[:self._softmax_index]):
            x = component.forward(x, keep=True)
            # a hidden layer ends in its normalize component (the next affine's input)
            if dropout_proportion and component.kind == "normalize":
                keep_scale = np.float32(1.0 / (1.0 - dropout_proportion))
                masks[index] = (rng.random(x.shape, dtype=np.float32) >= dropout_proportion) * keep_scale
                x = x * masks[index]
        return x, masks

    def train_backward(self, grad, masks):
        """Back-propagates `grad` (of the negative objective w.r.t. the logits of the last
        `train_forward`) through the same dropout `masks`, leaving the gradients in the affine components."""
        hidden = self.components[:self._softmax_index]
        for index in range(len(hidden) - 1, -1, -1):
            if index in masks:
                grad = grad * masks[index]
            if index == 0 and hidden[0].updatable:
                hidden[0].backward_params(grad)  # nothing below the input: no gradient w.r.t. it
            else:
                grad = hidden[index].backward(grad)

    def evaluate(self, feats, targets, batch=4096):
        """(average log-probability of the targets, frame accuracy) without touching gradients."""
        total = correct = 0.0
        for start in range(0, len(targets), batch):
            logits = self.logits(feats[start:start + batch])
            objective, right, _ = softmax_cross_entropy(logits, targets[start:start + batch], self.sum_group)
            total += objective
            correct += right
        n = max(len(targets), 1)
        return total / n, correct / n

    # ------------------------------------------------------------------ mix-up
    def mix_up(self, subclass_counts, num_mixtures, rng, power=0.25, min_count=1000.0, perturb_stddev=0.01):
        """nnet2's mix-up: give pdfs more softmax sub-classes, in proportion to count^power.

        `subclass_counts` is the summed softmax output per sub-class on training data. A new
        sub-class copies the row of the pdf's most-counted sub-class; the two are perturbed in
        opposite directions and share its probability (each bias gets log 0.5), so the
        network's output is unchanged up to the perturbation. Returns the new softmax dimension.
        """
        from kaldilite.gmm.am import split_targets

        affine = self.output_affine
        sizes = self.sum_group.sizes if self.sum_group is not None else np.ones(affine.output_dim, np.int64)
        counts = np.asarray(subclass_counts, dtype=np.float64)
        if counts.shape != (affine.output_dim,):
            raise InputError(f"mix-up: {counts.shape} counts for a softmax of dimension {affine.output_dim}")
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        pdf_counts = np.add.reduceat(counts, offsets[:-1])
        targets = split_targets(pdf_counts, num_mixtures, power=power, min_count=min_count)
        rows, biases, new_sizes, new_counts = [], [], [], []
        for pdf, size in enumerate(sizes):
            w = list(affine.weight[offsets[pdf]:offsets[pdf + 1]].astype(np.float64))
            b = list(affine.bias[offsets[pdf]:offsets[pdf + 1]].astype(np.float64))
            c = list(counts[offsets[pdf]:offsets[pdf + 1]])
            for _ in range(max(int(targets[pdf]), int(size)) - int(size)):
                k = int(np.argmax(c))
                c[k] *= 0.5
                c.append(c[k])
                noise = rng.standard_normal(affine.input_dim) * perturb_stddev
                w.append(w[k] - noise)
                w[k] = w[k] + noise
                b[k] += np.log(0.5)
                b.append(b[k])
            rows.extend(w)
            biases.extend(b)
            new_counts.extend(c)
            new_sizes.append(len(w))
        index = self._softmax_index
        self.components[index - 1] = AffineComponent(np.array(rows), np.array(biases))
        self.components[index] = SoftmaxComponent(len(rows))
        group = SumGroupComponent(new_sizes)
        if self.sum_group is not None:
            self.components[-1] = group
        else:
            self.components.append(group)
        log.info("Mixed up from dimension of %d to %d in the softmax layer.", counts.size, len(rows))
        return len(rows)

    # ------------------------------------------------------------------ copies, averaging, storage
    def copy(self):
        """A deep copy (parameters are copied, not shared)."""
        return Nnet.from_arrays(self.config(), {k: v.copy() for k, v in self.to_arrays().items()})

    def with_input_transform(self, matrix, input_dim):
        """A copy that reads `input_dim`-dim input x directly where this network read A x (+ c): a
        d x input_dim (linear) or d x (input_dim + 1) (affine) `matrix` folded into the first affine
        component (W A, b + W c, products in float64). The fixed preconditioning then costs nothing
        at scoring time (Kaldi's nnet2 keeps it as a FixedAffineComponent, one more product per
        frame); training keeps it outside the network, where it shapes the gradient."""
        first = self.components[0]
        matrix = np.asarray(matrix, dtype=np.float64)
        if first.kind != "affine":
            raise InputError(f"nnet: an input transform folds into a first affine component, not a {first.kind}")
        if matrix.ndim != 2 or matrix.shape[0] != first.input_dim or matrix.shape[1] not in (input_dim, input_dim + 1):
            raise DimensionMismatchError(f"nnet: a {matrix.shape} transform of {input_dim}-dim input does not feed a "
                                         f"first layer of {first.input_dim} inputs")
        weight = first.weight.astype(np.float64)
        bias = first.bias.astype(np.float64)
        if matrix.shape[1] == input_dim + 1:
            bias = bias + weight @ matrix[:, input_dim]
        out = self.copy()
        out.components[0] = AffineComponent(weight @ matrix[:, :input_dim], bias)
        return out

    def config(self):
        return [c.config() for c in self.components]

    def to_arrays(self, prefix="nnet_"):
        arrays = {}
        for i, component in enumerate(self.components):
            arrays.update(component.to_arrays(f"{prefix}{i}_"))
        return arrays

    @classmethod
    def from_arrays(cls, config, arrays, prefix="nnet_"):
        components = []
        for i, spec in enumerate(config):
            kind, key = spec.get("kind"), f"{prefix}{i}_"
            if kind == "affine":
                components.append(AffineComponent(arrays[key + "weight"], arrays[key + "bias"]))
            elif kind == "pnorm":
                components.append(PnormComponent(spec["input_dim"], spec["output_dim"], spec.get("p", 2.0)))
            elif kind == "normalize":
                components.append(NormalizeComponent(spec["dim"]))
            elif kind == "softmax":
                components.append(SoftmaxComponent(spec["dim"]))
            elif kind == "sum_group":
                components.append(SumGroupComponent(arrays[key + "sizes"]))
            else:
                raise InputError(f"nnet: unknown component kind {kind!r} (model written by a newer kaldilite?)")
        nnet = cls(components)
        nnet.check_dims()
        return nnet

    def check_dims(self):
        dim = None
        for i, component in enumerate(self.components):
            in_dim = getattr(component, "input_dim", getattr(component, "dim", None))
            out_dim = getattr(component, "output_dim", getattr(component, "dim", None))
            if dim is not None and in_dim != dim:
                raise InputError(f"nnet: component {i} ({component.kind}) takes {in_dim} inputs but gets {dim}")
            dim = out_dim

    def same_structure(self, other):
        return self.config() == other.config()


def require_same_structure(nnets, what):
    """Refuse an empty list or networks whose structures differ (`what` names the caller)."""
    if not nnets:
        raise InputError(f"{what}: no networks")
    for other in nnets[1:]:
        if not nnets[0].same_structure(other):
            raise InputError(f"{what}: networks differ in structure (mixed up at different sizes?)")


def combined_nnet(nnets, weights):
    """The network whose affine component c is sum_m weights[m, c] * (component c of nnets[m]);
    the other components (p-norm, normalize, softmax, sum-group) are the first network's."""
    out = nnets[0].copy()
    affine = [i for i, c in enumerate(out.components) if c.kind == "affine"]
    weights = np.asarray(weights, np.float64).reshape(len(nnets), len(affine))
    for column, index in enumerate(affine):
        component = out.components[index]
        component.weight = sum(w * n.components[index].weight.astype(np.float64)
                               for w, n in zip(weights[:, column], nnets)).astype(np.float32)
        component.bias = sum(w * n.components[index].bias.astype(np.float64)
                             for w, n in zip(weights[:, column], nnets)).astype(np.float32)
    return out


def average_nnets(nnets, weights=None):
    """Parameter average of networks with the same structure (nnet-am-average): `combined_nnet`
    with one weight per network for every affine component."""
    require_same_structure(nnets, "average_nnets")
    weights = np.full(len(nnets), 1.0 / len(nnets)) if weights is None else np.asarray(weights, np.float64)
    num_affine = len(nnets[0].affine_components())
    return combined_nnet(nnets, np.repeat(weights.reshape(-1, 1), num_affine, axis=1))


class NnetEnsemble:
    """Networks trained from different random starts on the same input, their posteriors averaged.

    Not a Kaldi nnet2 feature (Kaldi averages *parameters* of models that share a start,
    nnet-am-average); averaging *posteriors* of independently initialised networks is the
    classical ensemble (e.g. Hansen & Salamon 1990), which cuts the variance that a corpus of
    four training speakers leaves in each network. It has the interface the acoustic model and
    the decoder use: `input_dim`, `num_pdfs`, `posteriors`, `log_posteriors`, `describe`, and
    storage (`config`, `to_arrays`, `from_arrays`) with each member's arrays under its own prefix.

    `averaging`: "arithmetic" (the mean of the members' posteriors; what model files written
    before this option hold) or "geometric" (the normalized geometric mean: the mean of the
    members' log-posteriors, renormalized per frame, i.e. a product of experts). Geometric is
    sharper where the members agree and lets one member's confident "no" veto a pdf, which suits
    a decoder that sums log-likelihoods; it measured better on the commands slice.
    """

    AVERAGING = ("arithmetic", "geometric")

    def __init__(self, members, averaging="arithmetic"):
        self.members = list(members)
        if averaging not in self.AVERAGING:
            raise InputError(f"nnet ensemble: averaging must be one of {', '.join(self.AVERAGING)}, got {averaging!r}")
        self.averaging = averaging
        if len(self.members) < 2:
            raise InputError("nnet ensemble: needs at least two networks")
        first = self.members[0]
        for other in self.members[1:]:
            if other.input_dim != first.input_dim or other.num_pdfs != first.num_pdfs:
                raise InputError(f"nnet ensemble: members differ in input ({other.input_dim} vs {first.input_dim}) "
                                 f"or output ({other.num_pdfs} vs {first.num_pdfs}) dimension")

    @property
    def input_dim(self):
        return self.members[0].input_dim

    @property
    def num_pdfs(self):
        return self.members[0].num_pdfs

    def num_params(self):
        return sum(m.num_params() for m in self.members)

    def describe(self):
        """The members (once when alike: each is its own network, the parameters are not shared) and the
        parameter count of all of them, the model file's and the decoder's to compute."""
        members = [m.describe() for m in self.members]
        text = f"ensemble of {len(self.members)} networks ({self.averaging} mean of posteriors), "
        if len(set(members)) == 1:
            text += f"each {members[0]}"
        else:
            text += "; ".join(f"network {k}: {d}" for k, d in enumerate(members, 1))
        return f"{text}; {self.num_params()} params in all"

    def check_input(self, feats, where="features"):
        self.members[0].check_input(feats, where)

    def posteriors(self, feats):
        if self.averaging == "geometric":
            return np.exp(self._geometric_log_posteriors(feats))
        total = self.members[0].posteriors(feats)
        for member in self.members[1:]:
            total += member.posteriors(feats)
        total /= np.float32(len(self.members))
        return total

    def log_posteriors(self, feats, floor=1e-20):
        if self.averaging == "geometric":
            return np.maximum(self._geometric_log_posteriors(feats), np.float32(np.log(floor)))
        return np.log(np.maximum(self.posteriors(feats), floor))

    def _geometric_log_posteriors(self, feats, floor=1e-30):
        """log of the normalized geometric mean: mean of the members' log-posteriors minus its
        per-frame log-sum-exp (float32, as the members' outputs)."""
        total = np.log(np.maximum(self.members[0].posteriors(feats), np.float32(floor)))
        for member in self.members[1:]:
            total += np.log(np.maximum(member.posteriors(feats), np.float32(floor)))
        total /= np.float32(len(self.members))
        peak = total.max(axis=1, keepdims=True)
        total -= peak + np.log(np.exp(total - peak).sum(axis=1, keepdims=True))
        return total

    def with_input_transform(self, matrix, input_dim):
        """Each member with `matrix` folded into its first layer (`Nnet.with_input_transform`)."""
        return NnetEnsemble([m.with_input_transform(matrix, input_dim) for m in self.members], self.averaging)

    def config(self):
        return {"ensemble": [m.config() for m in self.members], "averaging": self.averaging}

    def to_arrays(self, prefix="nnet_"):
        arrays = {}
        for k, member in enumerate(self.members):
            arrays.update(member.to_arrays(f"{prefix}{k}_"))
        return arrays

    @classmethod
    def from_arrays(cls, config, arrays, prefix="nnet_"):
        return cls([Nnet.from_arrays(c, arrays, f"{prefix}{k}_") for k, c in enumerate(config["ensemble"])],
                   config.get("averaging", "arithmetic"))


def nnet_from_arrays(config, arrays):
    """A network or an ensemble, from what `config()` and `to_arrays()` of either wrote."""
    if isinstance(config, dict) and "ensemble" in config:
        return NnetEnsemble.from_arrays(config, arrays)
    return Nnet.from_arrays(config, arrays)
