"""Optimizers: SGD (with momentum), Adam (L2 weight decay) and AdamW (decoupled weight decay).

An optimizer holds parameter groups: lists of parameters with their own hyper-parameters, so that
a fine-tuning run can give pretrained layers a smaller learning rate than the new head, and
biases and LayerNorm weights no weight decay:

    AdamW([{"params": encoder_params, "lr_scale": 0.1},
           {"params": head_params},
           {"params": no_decay_params, "weight_decay": 0.0}], lr=3e-4, weight_decay=0.01)

A schedule sets the learning rate each step with ``set_lr(base_lr, step)``: every group then
runs at ``base_lr * group["lr_scale"]``. A group with ``"start_step": s`` stays frozen (no update,
no weight decay, no moment estimates) until step s + 1: gradual unfreezing while fine-tuning.

The updates run in place on the parameters' arrays (``p.data``), outside the graph, and follow
PyTorch's formulas to the operation, so results match ``torch.optim`` step for step.
"""

import math

from minitransformer import backend
from minitransformer.errors import ShapeError

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm"]


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``, ``state_dict``."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults, lr_scale=1.0, start_step=0)
        self.current_step = None  # the step set_lr was last told; None: every group is free
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got no parameters to optimize")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        self.state = {}  # id(parameter) -> {"step": int, buffers...}

    def add_param_group(self, group):
        """Add a dict with "params" and any hyper-parameters that differ from the defaults."""
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown hyper-parameters {sorted(unknown)} "
                             f"in a parameter group; known: {sorted(self.defaults)}")
        params = list(group["params"])
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{type(self).__name__}: a parameter appears in two groups")
        self.param_groups.append({**self.defaults, **group, "params": params})

    def parameters(self):
        """Every parameter of every group, in order."""
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self):
        """Forget every parameter's gradient (``grad = None``: the next backward stores fresh)."""
        for p in self.parameters():
            p.grad = None

    def set_lr(self, lr, step=None):
        """Set each group's learning rate to ``lr * lr_scale`` (what a schedule calls); ``step``
        (from 1): the update about to be made, which groups with a later ``start_step`` skip."""
        self.current_step = step
        for group in self.param_groups:
            group["lr"] = lr * group["lr_scale"]

    def frozen(self, group):
        """Whether ``group`` waits for a later step (its ``start_step``) before it trains."""
        return self.current_step is not None and self.current_step <= group["start_step"]

    def step(self):
        """Update every parameter that has a gradient, in every group not frozen."""
        for group in self.param_groups:
            if self.frozen(group):
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.setdefault(id(p), {"step": 0})
                state["step"] += 1
                self.update(p, p.grad, state, group)

    def update(self, p, grad, state, group):
        raise NotImplementedError

    # ----------------------------------------------------------------------- state

    def state_dict(self):
        """Hyper-parameters of each group (parameters by position) and each parameter's state
        as NumPy arrays: JSON-able except the arrays, ready for a checkpoint."""
        index = {id(p): i for i, p in enumerate(self.parameters())}
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        state = {
            index[key]: {name: value if name == "step" else backend.to_numpy(value).copy()
                         for name, value in values.items()}
            for key, values in self.state.items() if key in index
        }
        return {"param_groups": groups, "state": state}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and per-parameter state saved by ``state_dict``."""
        parameters = self.parameters()
        groups = state_dict["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the saved groups hold "
                f"{[len(g['params']) for g in groups]} parameters, this optimizer "
                f"{[len(g['params']) for g in self.param_groups]}"
            )
        for group, saved in zip(self.param_groups, groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for position, values in state_dict["state"].items():
            p = parameters[int(position)]
            restored = {}
            for name, value in values.items():
                if name == "step":
                    restored[name] = int(value)
                    continue
                if tuple(value.shape) != p.shape:
                    raise ShapeError(f"{type(self).__name__}.load_state_dict: state {name!r} of "
                                     f"parameter {position} has shape {tuple(value.shape)}, the "
                                     f"parameter {p.shape}")
                xp = backend.array_module(p.data)
                restored[name] = xp.asarray(value, dtype=p.dtype)
            self.state[id(p)] = restored


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum (heavy-ball or Nesterov).

        g ← g + weight_decay · p
        v ← momentum · v + g                       (v = g at the first step)
        p ← p - lr · (g + momentum · v  if nesterov else  v)
    """

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got lr={lr}, "
                             f"momentum={momentum}, weight_decay={weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def update(self, p, grad, state, group):
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        momentum = group["momentum"]
        if momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.copy()
            else:
                buffer = state["momentum_buffer"]
                buffer *= momentum
                buffer += grad
            velocity = state["momentum_buffer"]
            grad = grad + momentum * velocity if group["nesterov"] else velocity
        p.data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), with L2 weight decay added to the gradient.

        g ← g + weight_decay · p
        m ← β1 m + (1 - β1) g,        v ← β2 v + (1 - β2) g²
        p ← p - lr / (1 - β1^t) · m / (√v / √(1 - β2^t) + ε)
    """

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: needs lr, eps, weight_decay >= 0 and betas "
                             f"in [0, 1); got lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))
        self._scratch = {}  # id(parameter) -> a work array of its shape

    def update(self, p, grad, state, group):
        lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
        if decay and self.decoupled:
            p.data *= 1 - lr * decay  # AdamW: shrink the weights themselves
        elif decay:
            grad = grad + decay * p.data  # Adam: L2 penalty in the gradient
        xp = backend.array_module(p.data)
        if "exp_avg" not in state:
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        # The same operations as written above, in place, through one scratch array per
        # parameter (kept across steps, not in the state: it holds nothing between them).
        buffer = self._scratch.get(id(p))
        if (buffer is None or buffer.shape != p.data.shape or buffer.dtype != p.data.dtype
                or backend.array_module(buffer) is not xp):  # the parameter moved or changed
            buffer = self._scratch[id(p)] = xp.empty_like(p.data)
        m *= beta1
        xp.multiply(grad, 1 - beta1, out=buffer)
        m += buffer  # m ← β1 m + (1 - β1) g
        v *= beta2
        xp.multiply(grad, grad, out=buffer)
        buffer *= 1 - beta2
        v += buffer  # v ← β2 v + (1 - β2) g²
        step_size = lr / (1 - beta1**t)
        xp.sqrt(v, out=buffer)
        buffer /= math.sqrt(1 - beta2**t)
        buffer += group["eps"]  # the denominator √v / √(1 - β2^t) + ε
        xp.divide(m, buffer, out=buffer)
        buffer *= step_size
        p.data -= buffer


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019):

        p ← p · (1 - lr · weight_decay), then the Adam step without decay in the gradient.
    """

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)


def clip_grad_norm(parameters, max_norm):
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping, √(Σ_p ‖grad_p‖²), as a Python float.
    """
    if max_norm <= 0:
        raise ValueError(f"clip_grad_norm: max_norm must be positive, got {max_norm}")
    grads = [p.grad for p in parameters if p.grad is not None]
    total = math.sqrt(sum(float((g * g).sum()) for g in grads))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= scale
    return total
