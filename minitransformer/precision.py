"""Mixed precision: float16 forward and backward, float32 weights, dynamic loss scaling.

float16 (IEEE half precision) has 5 exponent bits and 10 mantissa bits:

    largest number          65504
    smallest normal         2^-14 ≈ 6.1e-5   (full 11-bit precision down to here)
    smallest subnormal      2^-24 ≈ 6.0e-8   (below: 0)
    spacing next to 1       2^-10 ≈ 9.8e-4

A GPU multiplies float16 matrices on its tensor cores several times faster than float32, and
float16 activations take half the memory. Training in float16 alone fails in two ways, each
with its fix (Micikevicius et al. 2018, "Mixed Precision Training"):

1. Small updates vanish. A weight 1.0 and an update lr · g = 1e-4: 1 + 1e-4 rounds back to 1
   in float16. Fix: **float32 master weights**. The optimizer updates float32 weights; forward
   and backward run on float16 copies of them (``Float16Weights``).
2. Small gradients underflow. Many gradients of a loss averaged over thousands of tokens lie
   below 6e-8 and become 0 in float16. Fix: **loss scaling** (``LossScaler``). Backpropagate
   S · loss: the chain rule is linear, so every gradient is S times larger, clear of the
   underflow; divide by S, in float32, before the update. An S too large overflows (inf, or
   NaN from inf - inf): that step is skipped and S halved; after ``growth_interval`` steps in
   a row without overflow S is doubled again. S so stays near the largest value that does not
   overflow (dynamic loss scaling, as PyTorch's ``GradScaler``).

Inside the float16 forward, softmax, log-softmax, layer norm and cross-entropy compute their
statistics in float32 and the loss is float32 (ops/widen.py), as PyTorch's autocast does.

Which way round. Here the model keeps float32 parameters, the master weights, and lends float16
copies to forward and backward. The other way, float16 parameters whose float32 copies live in
the optimizer, would hand every reader of the model between steps float16 weights: a checkpoint
would store them rounded (or would have to fetch the optimizer's copies), and evaluation,
``--resume`` and ``load_state_dict`` would each need to know which copy is the real one. This
way everything outside a training step sees the float32 model it always saw: checkpoints hold
the float32 weights, ``--resume`` loads them, and nothing the user saves is ever rounded to
float16. The price is one float32 → float16 copy of the weights per step, a pass over the
parameters, small beside the step's matrix products.

On the CPU float16 is slow: NumPy has no float16 BLAS, and its float16 matrix products run a
plain loop; a training step took 70 to 170 times as long as in float32 where
``benchmarks/precision.py`` measured it (docs/performance.md). float16 pays on a GPU (CuPy and
cuBLAS).
"""

import contextlib
import math

from minitransformer.backend import array_module
from minitransformer.errors import DTypeError

__all__ = ["PRECISIONS", "Float16Weights", "LossScaler", "check_precision"]

PRECISIONS = ("float32", "float16")


def check_precision(function, precision):
    """``precision`` if it is one of PRECISIONS; a ValueError naming ``function`` otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"{function}: precision must be 'float32' or 'float16', got "
                         f"precision={precision!r}")
    return precision


class LossScaler:
    """Dynamic loss scaling: backpropagate S · loss, unscale the gradients, adapt S.

        gradients of S · loss = S · gradients of loss           (the chain rule is linear)
        S ← S · backoff_factor   after a step whose gradients hold inf or NaN (it is skipped)
        S ← S · growth_factor    after ``growth_interval`` steps in a row without one

    One training step with it::

        scaler.scale_loss(loss).backward()                      # float16 gradients of S · loss
        grads, found_inf = scaler.unscale_and_check(grads)      # g / S in float32; any inf/NaN?
        if not found_inf:
            ... clip and update with grads ...
        scaler.update(found_inf)

    Attributes: ``scale`` (S), ``clean_steps`` (steps without inf/NaN since S last changed),
    ``skipped_steps`` (steps skipped so far), and the four settings.
    """

    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000):
        if not (math.isfinite(init_scale) and init_scale > 0):
            raise ValueError(f"LossScaler: init_scale must be a positive number, got "
                             f"{init_scale}")
        if not growth_factor > 1 or not 0 < backoff_factor < 1:
            raise ValueError(f"LossScaler: needs growth_factor > 1 and 0 < backoff_factor < 1 "
                             f"(grow after clean steps, shrink after an overflow); got "
                             f"growth_factor={growth_factor}, backoff_factor={backoff_factor}")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or \
                growth_interval < 1:
            raise ValueError(f"LossScaler: growth_interval must be an int >= 1 (steps), got "
                             f"{growth_interval!r}")
        self.scale = float(init_scale)
        self.growth_factor, self.backoff_factor = float(growth_factor), float(backoff_factor)
        self.growth_interval = growth_interval
        self.clean_steps = 0
        self.skipped_steps = 0

    def __repr__(self):
        return (f"LossScaler(scale={self.scale:g}, clean_steps={self.clean_steps}, "
                f"skipped_steps={self.skipped_steps}, growth_interval={self.growth_interval})")

    def scale_loss(self, loss):
        """S · loss, the Tensor to call ``backward()`` on.

        The loss must be float32 (or float64): its own gradient is S (65536 at the start), which
        float16 cannot hold (its largest number is 65504). ``F.cross_entropy`` returns a float32
        loss for float16 logits.
        """
        if loss.dtype.itemsize < 4:
            raise DTypeError(f"LossScaler.scale_loss: the loss is {loss.dtype}; compute it in "
                             f"float32 (F.cross_entropy does, for float16 logits), since its "
                             f"gradient, the scale {self.scale:g}, overflows float16 beyond "
                             "65504")
        return loss * self.scale

    def unscale_and_check(self, grads):
        """The gradients of S · loss divided by S, in float32, and whether any holds inf or NaN.

        grads: a list of arrays (float16 or float32, any shapes, one backend). Returns
        ``(unscaled, found_inf)``: new float32 arrays g / S of the same shapes (the given arrays
        are not changed), and a bool. A GPU waits here once, to read found_inf.
        """
        unscaled = []
        for grad in grads:
            wide = grad.astype("float32")  # a new array, even from float32
            wide /= self.scale
            unscaled.append(wide)
        if not unscaled:
            return unscaled, False
        xp = array_module(*unscaled)
        finite = xp.stack([xp.isfinite(g).all() for g in unscaled]).all()
        return unscaled, not bool(finite)

    def update(self, found_inf):
        """After a step: halve S and count a skipped step if ``found_inf``; otherwise count a
        clean step, and double S after ``growth_interval`` of them in a row."""
        if found_inf:
            self.scale *= self.backoff_factor
            self.clean_steps = 0
            self.skipped_steps += 1
            return
        self.clean_steps += 1
        if self.clean_steps == self.growth_interval:
            self.scale *= self.growth_factor
            self.clean_steps = 0

    def state_dict(self):
        """What a checkpoint keeps (JSON-able): the scale and the two counters."""
        return {"scale": self.scale, "clean_steps": self.clean_steps,
                "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state):
        """Restore what ``state_dict`` returned (the four settings stay as constructed)."""
        missing = sorted({"scale", "clean_steps", "skipped_steps"} - set(state))
        if missing:
            raise ValueError(f"LossScaler.load_state_dict: the state lacks {missing}; expected "
                             "what state_dict() returns")
        self.scale = float(state["scale"])
        self.clean_steps, self.skipped_steps = int(state["clean_steps"]), \
            int(state["skipped_steps"])


def _floating_tensors(model):
    """(name, tensor) for every floating parameter and buffer of ``model``, each once (a table
    two modules share counts once). Buffers matter too: a float32 position table added to a
    float16 activation would promote everything after it back to float32. (Module keeps both
    in ``_parameters`` and ``_buffers``; ``Module.to`` walks them the same way.)"""
    seen, tensors = set(), []
    for module_name, module in model.named_modules():
        for name, tensor in (*module._parameters.items(), *module._buffers.items()):
            if id(tensor) not in seen and tensor.dtype.kind == "f":
                seen.add(id(tensor))
                tensors.append((f"{module_name}.{name}" if module_name else name, tensor))
    return tensors


class Float16Weights:
    """A model's float32 parameters and buffers, lent to forward and backward as float16 copies::

        weights = Float16Weights(model)
        with weights.compute():          # inside: every parameter and buffer holds float16
            loss = F.cross_entropy(model(ids), targets)     # float16 forward, float32 loss
            scaler.scale_loss(loss).backward()              # float16 gradients in p.grad
        # after it: each p.data is the float32 array again; p.grad the float16 gradient

    The model stays float32 between steps: its state_dict, checkpoints and evaluation see the
    master weights. Each ``compute()`` copies the current float32 values into float16 arrays
    kept from step to step (no new memory each step).

    Inputs: token ids need nothing (the embedding is float16), but a float32 input meeting a
    float16 weight is promoted, and with it the rest of the forward: give float inputs as
    float16 (``x.astype("float16")``).
    """

    def __init__(self, model):
        self.named_tensors = _floating_tensors(model)
        wrong = [f"{name} ({tensor.dtype})" for name, tensor in self.named_tensors
                 if tensor.dtype != "float32"]
        if wrong:
            listed = ", ".join(wrong[:3]) + (f" and {len(wrong) - 3} more" if len(wrong) > 3
                                             else "")
            raise DTypeError(f"Float16Weights: the master weights must be float32, but {listed}"
                             " are not; call model.float() first")
        self._copies = [None] * len(self.named_tensors)

    @contextlib.contextmanager
    def compute(self):
        """Inside the block every floating parameter and buffer holds a float16 copy of its
        float32 value; on leaving it (also on an error) the float32 arrays come back. The
        gradients a backward stored inside stay float16."""
        tensors = [tensor for _, tensor in self.named_tensors]
        masters = [tensor.data for tensor in tensors]
        try:
            for position, tensor in enumerate(tensors):
                tensor.data = self._float16_copy(position, tensor.data)
            yield
        finally:
            for tensor, master in zip(tensors, masters):
                tensor.data = master

    def _float16_copy(self, position, master):
        """The float16 array kept for tensor ``position``, filled with ``master``'s values (a new
        one the first time, or when the tensor changed shape or device)."""
        xp = array_module(master)
        copy = self._copies[position]
        if copy is None or copy.shape != master.shape or array_module(copy) is not xp:
            copy = self._copies[position] = master.astype("float16")
        else:
            xp.copyto(copy, master, casting="same_kind")
        return copy
