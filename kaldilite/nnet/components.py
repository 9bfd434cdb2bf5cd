"""The layers of an nnet2-style p-norm network, each with its forward and backward pass.

Follows Kaldi's src/nnet2/nnet-component.cc: `AffineComponent` (y = x W^T + b),
`PnormComponent` (each output is the p-norm of a group of inputs), `NormalizeComponent` (scale
each row to root-mean-square 1, with Kaldi's floor 2^-66 on the mean square),
`SoftmaxComponent`, and `SumGroupComponent` (sums the softmax's sub-class probabilities into
pdf probabilities after nnet2's mix-up). Matrices hold one frame per row (minibatch x dim),
float32, so every pass is a few BLAS products.

Each component's `forward(x)` returns its output and keeps what `backward` needs;
`backward(dy)` returns dL/dx and, for an affine layer, stores the parameter gradients in
`grad_weight` / `grad_bias`. The softmax's backward is only used through
`softmax_cross_entropy`, which returns the gradient with respect to the softmax *input*
(the numerically stable form, probabilities minus targets).
"""

from __future__ import annotations

import numpy as np

from kaldilite.errors import InputError

NORMALIZE_FLOOR = 2.0 ** -66  # Kaldi's NormalizeComponent::kNormFloor


class Component:
    """Base class: `kind` names the component in the model file; no parameters by default."""

    kind = "component"
    updatable = False

    def forward(self, x, keep=True):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def to_arrays(self, prefix):
        return {}

    def config(self):
        return {"kind": self.kind}


class AffineComponent(Component):
    """y = x W^T + b, W of shape (output_dim, input_dim)."""

    kind = "affine"
    updatable = True

    def __init__(self, weight, bias):
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)
        self.bias = np.ascontiguousarray(bias, dtype=np.float32)
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise InputError(f"affine component: weight {self.weight.shape} and bias {self.bias.shape} disagree")
        self.grad_weight = self.grad_bias = None
        self._x = None

    @classmethod
    def random(cls, input_dim, output_dim, rng, param_stddev=None, bias_stddev=0.5):
        """Kaldi's nnet2 initialisation: weights N(0, 1/input_dim), biases N(0, bias_stddev^2)."""
        stddev = input_dim ** -0.5 if param_stddev is None else param_stddev
        weight = rng.standard_normal((output_dim, input_dim)) * stddev
        bias = rng.standard_normal(output_dim) * bias_stddev
        return cls(weight, bias)

    @property
    def input_dim(self):
        return self.weight.shape[1]

    @property
    def output_dim(self):
        return self.weight.shape[0]

    def forward(self, x, keep=True):
        if keep:
            self._x = x
        y = x @ self.weight.T
        y += self.bias
        return y

    def backward(self, dy):
        self.backward_params(dy)
        return dy @ self.weight

    def backward_params(self, dy):
        """The parameter gradients alone: the first layer's input (the network's) needs no gradient, and
        skipping its product saves a third of a training minibatch's backward pass."""
        self.grad_weight = dy.T @ self._x
        self.grad_bias = dy.sum(axis=0)

    def params(self):
        return [self.weight, self.bias]

    def grads(self):
        return [self.grad_weight, self.grad_bias]

    def to_arrays(self, prefix):
        return {prefix + "weight": self.weight, prefix + "bias": self.bias}

    def config(self):
        return {"kind": self.kind, "input_dim": self.input_dim, "output_dim": self.output_dim}


class PnormComponent(Component):
    """y_j = (sum over group j of |x_i|^p)^(1/p); consecutive groups of `input_dim / output_dim` inputs."""

    kind = "pnorm"

    def __init__(self, input_dim, output_dim, p=2.0):
        if output_dim <= 0 or input_dim % output_dim:
            raise InputError(f"p-norm component: input dim {input_dim} is not a multiple of output dim {output_dim}")
        if p < 1.0:
            raise InputError(f"p-norm component: p must be >= 1, got {p}")
        self.input_dim, self.output_dim, self.p = int(input_dim), int(output_dim), float(p)
        self.group = self.input_dim // self.output_dim
        self._x = self._y = None

    def forward(self, x, keep=True):
        grouped = x.reshape(len(x), self.output_dim, self.group)
        if self.p == 2.0:
            y = np.sqrt(np.einsum("ijk,ijk->ij", grouped, grouped))
        else:
            y = (np.abs(grouped) ** self.p).sum(axis=2) ** (1.0 / self.p)
        if keep:
            self._x, self._y = x, y
        return y

    def backward(self, dy):
        grouped = self._x.reshape(len(self._x), self.output_dim, self.group)
        # dy_j/dx_i = sign(x_i) |x_i|^(p-1) y_j^(1-p); a group whose norm is 0 passes no gradient.
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.p == 2.0:
                scale = np.where(self._y > 0, dy / self._y, 0.0).astype(np.float32)
                dx = grouped * scale[:, :, None]
            else:
                scale = np.where(self._y > 0, dy * self._y ** (1.0 - self.p), 0.0).astype(np.float32)
                dx = np.sign(grouped) * np.abs(grouped) ** (self.p - 1.0) * scale[:, :, None]
        return dx.reshape(self._x.shape).astype(np.float32, copy=False)

    def config(self):
        return {"kind": self.kind, "input_dim": self.input_dim, "output_dim": self.output_dim, "p": self.p}


class NormalizeComponent(Component):
    """y = x / sqrt(max(mean(x^2), floor)): every row gets root-mean-square 1 (Kaldi's nnet2 layer)."""

    kind = "normalize"

    def __init__(self, dim):
        self.dim = int(dim)
        self._x = self._scale = None

    def forward(self, x, keep=True):
        mean_square = np.einsum("ij,ij->i", x, x) / self.dim
        scale = 1.0 / np.sqrt(np.maximum(mean_square, NORMALIZE_FLOOR))
        if keep:
            self._x, self._scale = x, scale
            self._floored = mean_square <= NORMALIZE_FLOOR
        return x * scale[:, None].astype(x.dtype)

    def backward(self, dy):
        # With s = mean(x^2)^(-1/2): dL/dx = s dy - s^3 x (x . dy) / D (no second term where floored).
        s = self._scale
        inner = np.einsum("ij,ij->i", self._x, dy)
        coeff = np.where(self._floored, 0.0, s ** 3 * inner / self.dim)
        return (dy * s[:, None] - self._x * coeff[:, None]).astype(np.float32)

    def config(self):
        return {"kind": self.kind, "dim": self.dim}


class SoftmaxComponent(Component):
    """Row-wise softmax (max-subtracted); its gradient comes from `softmax_cross_entropy`."""

    kind = "softmax"

    def __init__(self, dim):
        self.dim = int(dim)

    def forward(self, x, keep=True):
        return softmax(x)

    def config(self):
        return {"kind": self.kind, "dim": self.dim}


class SumGroupComponent(Component):
    """Sums consecutive groups of inputs (`sizes[j]` inputs -> output j): sub-class -> pdf probabilities."""

    kind = "sum_group"

    def __init__(self, sizes):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        if self.sizes.ndim != 1 or len(self.sizes) == 0 or (self.sizes < 1).any():
            raise InputError(f"sum-group component: group sizes must be positive, got {self.sizes}")
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.owner = np.repeat(np.arange(len(self.sizes)), self.sizes)

    @property
    def input_dim(self):
        return int(self.sizes.sum())

    @property
    def output_dim(self):
        return len(self.sizes)

    def forward(self, x, keep=True):
        return np.add.reduceat(x, self.starts, axis=1)

    def backward(self, dy):
        return dy[:, self.owner]

    def to_arrays(self, prefix):
        return {prefix + "sizes": self.sizes}

    def config(self):
        return {"kind": self.kind, "input_dim": self.input_dim, "output_dim": self.output_dim}


def softmax(x):
    shifted = x - x.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def softmax_cross_entropy(logits, targets, sum_group=None):
    """Cross-entropy of the softmax of `logits` (N x K) against integer pdf `targets` (N,).

    With `sum_group` (after mix-up) a pdf's probability is the sum of its sub-classes'.
    Returns (total objective = sum of log-probabilities of the targets, number of frames whose
    most probable pdf is the target, gradient of the *negative* objective w.r.t. the logits).
    """
    return cross_entropy_of_posteriors(softmax(logits.astype(np.float32, copy=True)), targets, sum_group)


def cross_entropy_of_posteriors(probs, targets, sum_group=None):
    """`softmax_cross_entropy` given the softmax outputs `probs` themselves (N x K, float32)."""
    rows = np.arange(len(targets))
    if sum_group is None:
        target_probs = probs[rows, targets]
        pdf_probs = probs
        grad = probs.copy()
        grad[rows, targets] -= 1.0
    else:
        pdf_probs = sum_group.forward(probs)
        target_probs = pdf_probs[rows, targets]
        # d(-log P_target)/d logit_k = p_k - [k in target] p_k / P_target
        in_target = sum_group.owner[None, :] == targets[:, None]
        grad = probs - np.where(in_target, probs / np.maximum(target_probs, 1e-30)[:, None], 0.0)
        grad = grad.astype(np.float32)
    objective = float(np.log(np.maximum(target_probs, 1e-30), dtype=np.float64).sum())
    correct = int((pdf_probs.argmax(axis=1) == targets).sum())
    return objective, correct, grad

