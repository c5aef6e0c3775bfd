"""A hand-written NumPy training step of the benchmark model: the floor the framework is measured
against.

The same model as ``configs.build_model(config)`` (a causal LM: token embedding + learned
positions, post-LN encoder layers with ReLU, an untied linear head), the same loss (cross-entropy,
mean over all B·T positions) and the same optimiser (Adam with PyTorch's formula, as
``mt.optim.Adam``), written without a graph, the way a careful NumPy programmer would:

- every Linear is one 2-D GEMM on the (B·T, D) rows, y = x W + b, W stored (in, out) as ours;
- attention is batched ``matmul`` on (B, H, T, d_k) views, no copies to split heads;
- the causal mask is an additive (T, T) bias of 0 / -inf (e^-inf = 0, as our ``where``);
- softmax + cross-entropy are fused: dL/dlogits = (softmax - onehot) / N;
- softmax backward is P ⊙ (dP - Σ dP ⊙ P), never a Jacobian;
- the embedding backward sorts the ids and sums each run with ``add.reduceat`` where ids repeat
  (tiny, small: 1.5x faster than ``add.at``); with mostly distinct ids (medium) ``add.at``, whose
  NumPy 2 fast path is then faster;
- Adam updates in place with one scratch buffer per parameter; weight gradients are written into
  preallocated buffers (``out=``);
- the dtype is the parameters' (float32 for the benchmark, float64 for the gradient test), never
  upcast.

Parameters are a dict keyed by our names (``encoder.encoder.layers.0.self_attn.w_q.weight``),
copied from a model with ``parameters_of(model)``; ``tests/test_benchmark_reference.py`` checks that
the loss, every gradient and the Adam update equal the framework's in float64.

    reference = ReferenceLM(config, parameters_of(model))
    optimizer = ReferenceAdam(reference.params, lr=1e-3)
    loss, grads = reference.loss_and_grads(inputs, targets)   # (B, T) int ids each
    optimizer.step(grads)
"""

import math

import numpy as np

__all__ = ["ReferenceAdam", "ReferenceLM", "parameters_of"]

EMBED = "encoder.embed.weight"
POSITIONS = "encoder.positional.weight"
HEAD_WEIGHT, HEAD_BIAS = "output.linear.weight", "output.linear.bias"
LN_EPS = 1e-5  # nn.LayerNorm's default, which build_model keeps

# Short name inside a layer -> our parameter name after "encoder.encoder.layers.{i}."
LAYER_PARAMETERS = {
    "wq": "self_attn.w_q.weight", "bq": "self_attn.w_q.bias",
    "wk": "self_attn.w_k.weight", "bk": "self_attn.w_k.bias",
    "wv": "self_attn.w_v.weight", "bv": "self_attn.w_v.bias",
    "wo": "self_attn.w_o.weight", "bo": "self_attn.w_o.bias",
    "w1": "ff.linear1.weight", "b1": "ff.linear1.bias",
    "w2": "ff.linear2.weight", "b2": "ff.linear2.bias",
    "g1": "norm1.weight", "beta1": "norm1.bias",
    "g2": "norm2.weight", "beta2": "norm2.bias",
}


def parameters_of(model):
    """Copies of a model's parameters as NumPy arrays, by name (the reference's own storage)."""
    from minitransformer import backend

    return {name: backend.to_numpy(p.data).copy() for name, p in model.named_parameters()}


def _column_sums(x):
    """Σ over the rows of x (N, D) -> (D,), as one GEMV (several times faster than
    ``x.sum(axis=0)``, which walks the rows one by one)."""
    return np.ones(x.shape[0], dtype=x.dtype) @ x


def _layer_norm(x):
    """x̂ and 1/√(σ² + ε) of each row of x (N, D); the caller scales and shifts."""
    mu = x.mean(axis=-1, keepdims=True)
    centered = x - mu  # (N, D)
    variance = (centered * centered).mean(axis=-1, keepdims=True)
    inv_std = 1 / np.sqrt(variance + LN_EPS)  # (N, 1)
    centered *= inv_std  # now x̂
    return centered, inv_std


def _layer_norm_backward(grad_y, x_hat, inv_std, weight, grad_weight, grad_bias):
    """dL/dx of y = x̂ · weight + bias; writes dL/dweight and dL/dbias into their buffers."""
    grad_weight[...] = _column_sums(grad_y * x_hat)
    grad_bias[...] = _column_sums(grad_y)
    grad_x_hat = grad_y * weight  # (N, D)
    projection = (grad_x_hat * x_hat).mean(axis=-1, keepdims=True)  # (N, 1)
    grad_x_hat -= grad_x_hat.mean(axis=-1, keepdims=True)
    grad_x_hat -= x_hat * projection
    grad_x_hat *= inv_std
    return grad_x_hat


class ReferenceLM:
    """Forward and backward of the benchmark LM by hand.

    Shapes: inputs and targets (B, T) int ids -> a float loss and a dict of gradients shaped as
    the parameters. ``params`` is kept (not copied): ``ReferenceAdam`` updates it in place.
    The returned gradient arrays are reused by the next call.
    """

    def __init__(self, config, params):
        self.params = params
        self.n_heads = config["n_heads"]
        self.n_layers = config["n_layers"]
        self.layers = [
            {short: params[f"encoder.encoder.layers.{i}.{name}"]
             for short, name in LAYER_PARAMETERS.items()}
            for i in range(self.n_layers)
        ]
        self.grads = {name: np.empty_like(p) for name, p in params.items()}
        self.layer_grads = [
            {short: self.grads[f"encoder.encoder.layers.{i}.{name}"]
             for short, name in LAYER_PARAMETERS.items()}
            for i in range(self.n_layers)
        ]
        self._mask_bias = {}

    def causal_bias(self, length, dtype):
        """(T, T): 0 where query i may see key j (j <= i), -inf above the diagonal."""
        key = (length, np.dtype(dtype))
        if key not in self._mask_bias:
            future = np.triu(np.ones((length, length), dtype=bool), k=1)
            self._mask_bias[key] = np.where(future, -np.inf, 0).astype(dtype)
        return self._mask_bias[key]

    # ------------------------------------------------------------------------------ forward

    def _attention_forward(self, x, w, batch, length):
        """Self-attention of x (N, D), N = B·T; returns the output (N, D) and what backward
        needs."""
        n_rows, d_model = x.shape
        d_k = d_model // self.n_heads
        scale = 1 / math.sqrt(d_k)
        q = x @ w["wq"]
        q += w["bq"]
        q *= scale  # scaling q (N·D values) is cheaper than the scores (B·H·T·T values)
        k = x @ w["wk"]
        k += w["bk"]
        v = x @ w["wv"]
        v += w["bv"]
        heads = (batch, length, self.n_heads, d_k)
        q4 = q.reshape(heads).transpose(0, 2, 1, 3)  # (B, H, T, d_k), a view
        k4 = k.reshape(heads).transpose(0, 2, 1, 3)
        v4 = v.reshape(heads).transpose(0, 2, 1, 3)
        p = np.matmul(q4, k4.transpose(0, 1, 3, 2))  # (B, H, T, T) scores
        p += self.causal_bias(length, x.dtype)
        p -= p.max(axis=-1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=-1, keepdims=True)  # softmax, in place
        merged = np.empty((batch, length, self.n_heads, d_k), dtype=x.dtype)
        np.matmul(p, v4, out=merged.transpose(0, 2, 1, 3))  # (B, H, T, d_k) into (B, T, H, d_k)
        merged = merged.reshape(n_rows, d_model)  # Concat(head_1, ..., head_h), no copy
        out = merged @ w["wo"]
        out += w["bo"]
        return out, (q4, k4, v4, p, merged)

    def _layer_forward(self, x, w, batch, length):
        attention, attention_cache = self._attention_forward(x, w, batch, length)
        attention += x  # residual
        x_hat1, inv_std1 = _layer_norm(attention)
        x1 = x_hat1 * w["g1"]
        x1 += w["beta1"]
        hidden = x1 @ w["w1"]
        hidden += w["b1"]
        np.maximum(hidden, 0, out=hidden)  # ReLU; hidden > 0 is its own backward mask
        ffn = hidden @ w["w2"]
        ffn += w["b2"]
        ffn += x1  # residual
        x_hat2, inv_std2 = _layer_norm(ffn)
        x2 = x_hat2 * w["g2"]
        x2 += w["beta2"]
        return x2, (x, attention_cache, x_hat1, inv_std1, x1, hidden, x_hat2, inv_std2)

    # ------------------------------------------------------------------------------ backward

    def _attention_backward(self, grad_out, x, cache, w, g, batch, length):
        """dL/dx through the attention block (not the residual); fills g's attention grads."""
        q4, k4, v4, p, merged = cache
        n_rows, d_model = grad_out.shape
        d_k = d_model // self.n_heads
        scale = 1 / math.sqrt(d_k)
        np.matmul(merged.T, grad_out, out=g["wo"])
        g["bo"][...] = _column_sums(grad_out)
        grad_merged = grad_out @ w["wo"].T  # (N, D)
        grad_heads = grad_merged.reshape(batch, length, self.n_heads, d_k).transpose(0, 2, 1, 3)
        shape = (batch, length, self.n_heads, d_k)
        grad_q, grad_k, grad_v = (np.empty(shape, dtype=x.dtype) for _ in range(3))
        np.matmul(p.transpose(0, 1, 3, 2), grad_heads, out=grad_v.transpose(0, 2, 1, 3))
        grad_p = np.matmul(grad_heads, v4.transpose(0, 1, 3, 2))  # (B, H, T, T)
        grad_p -= (grad_p * p).sum(axis=-1, keepdims=True)
        grad_p *= p  # dL/dscores = P ⊙ (dP - Σ dP ⊙ P)
        np.matmul(grad_p, k4, out=grad_q.transpose(0, 2, 1, 3))  # dL/d(q · scale)
        np.matmul(grad_p.transpose(0, 1, 3, 2), q4, out=grad_k.transpose(0, 2, 1, 3))
        grad_q = grad_q.reshape(n_rows, d_model)
        grad_q *= scale
        grad_k = grad_k.reshape(n_rows, d_model)
        grad_v = grad_v.reshape(n_rows, d_model)
        grad_x = grad_q @ w["wq"].T
        for name, grad in (("q", grad_q), ("k", grad_k), ("v", grad_v)):
            np.matmul(x.T, grad, out=g["w" + name])
            g["b" + name][...] = _column_sums(grad)
        grad_x += grad_k @ w["wk"].T
        grad_x += grad_v @ w["wv"].T
        return grad_x

    def _layer_backward(self, grad_x2, cache, w, g, batch, length):
        x, attention_cache, x_hat1, inv_std1, x1, hidden, x_hat2, inv_std2 = cache
        grad_ffn = _layer_norm_backward(grad_x2, x_hat2, inv_std2, w["g2"], g["g2"], g["beta2"])
        np.matmul(hidden.T, grad_ffn, out=g["w2"])
        g["b2"][...] = _column_sums(grad_ffn)
        grad_hidden = grad_ffn @ w["w2"].T  # (N, d_ff)
        grad_hidden *= hidden > 0  # ReLU backward
        np.matmul(x1.T, grad_hidden, out=g["w1"])
        g["b1"][...] = _column_sums(grad_hidden)
        grad_x1 = grad_hidden @ w["w1"].T
        grad_x1 += grad_ffn  # residual
        grad_attention = _layer_norm_backward(grad_x1, x_hat1, inv_std1, w["g1"], g["g1"],
                                              g["beta1"])
        grad_x = self._attention_backward(grad_attention, x, attention_cache, w, g, batch,
                                          length)
        grad_x += grad_attention  # residual
        return grad_x

    # ------------------------------------------------------------------------------ the step

    def loss_and_grads(self, inputs, targets):
        """Mean cross-entropy of the next-token logits, and dL/dparameter for every parameter."""
        params, grads = self.params, self.grads
        batch, length = inputs.shape
        ids = inputs.reshape(-1)  # (N,)
        x = params[EMBED].take(ids, axis=0).reshape(batch, length, -1)  # (B, T, D)
        x += params[POSITIONS][:length]
        x = x.reshape(batch * length, -1)  # (N, D)
        caches = []
        for w in self.layers:
            x, cache = self._layer_forward(x, w, batch, length)
            caches.append(cache)

        logits = x @ params[HEAD_WEIGHT]  # (N, V)
        logits += params[HEAD_BIAS]
        rows, classes = np.arange(ids.size), targets.reshape(-1)
        logits -= logits.max(axis=1, keepdims=True)
        target_logits = logits[rows, classes]  # (N,) shifted logits of the targets
        np.exp(logits, out=logits)
        total = logits.sum(axis=1, keepdims=True)  # (N, 1)
        loss = float(np.mean(np.log(total[:, 0]) - target_logits))
        logits /= total  # softmax
        logits[rows, classes] -= 1
        logits *= 1 / ids.size  # dL/dlogits = (softmax - onehot) / N
        grad_logits = logits

        np.matmul(x.T, grad_logits, out=grads[HEAD_WEIGHT])
        grads[HEAD_BIAS][...] = _column_sums(grad_logits)
        grad_x = grad_logits @ params[HEAD_WEIGHT].T  # (N, D)
        for w, g, cache in zip(self.layers[::-1], self.layer_grads[::-1], caches[::-1]):
            grad_x = self._layer_backward(grad_x, cache, w, g, batch, length)

        grads[POSITIONS][...] = 0
        grads[POSITIONS][:length] = _column_sums(grad_x.reshape(batch, -1)).reshape(length, -1)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        grads[EMBED][...] = 0
        if 2 * starts.size > ids.size:  # mostly distinct ids (medium): add.at's fast path wins
            np.add.at(grads[EMBED], ids, grad_x)
        else:  # many repeats (tiny, small): one sum per run of equal sorted ids
            grads[EMBED][sorted_ids[starts]] = np.add.reduceat(grad_x[order], starts, axis=0)
        return loss, grads


class ReferenceAdam:
    """In-place Adam on a dict of arrays, PyTorch's formula (as ``mt.optim.Adam``, no decay):

        m ← β1 m + (1 - β1) g,        v ← β2 v + (1 - β2) g²
        p ← p - lr / (1 - β1^t) · m / (√v / √(1 - β2^t) + ε)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, tuple(betas), eps
        self.steps = 0
        self.exp_avg = {name: np.zeros_like(p) for name, p in params.items()}
        self.exp_avg_sq = {name: np.zeros_like(p) for name, p in params.items()}
        self.scratch = {name: np.empty_like(p) for name, p in params.items()}

    def step(self, grads):
        """Update every parameter in place from ``grads`` (same names)."""
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**self.steps)
        root_correction = math.sqrt(1 - beta2**self.steps)
        for name, p in self.params.items():
            grad, m, v, buffer = (grads[name], self.exp_avg[name], self.exp_avg_sq[name],
                                  self.scratch[name])
            m *= beta1
            np.multiply(grad, 1 - beta1, out=buffer)
            m += buffer
            v *= beta2
            np.multiply(grad, grad, out=buffer)
            buffer *= 1 - beta2
            v += buffer
            np.sqrt(v, out=buffer)
            buffer /= root_correction
            buffer += self.eps  # the denominator √v / √(1 - β2^t) + ε
            np.divide(m, buffer, out=buffer)
            buffer *= step_size
            p -= buffer
