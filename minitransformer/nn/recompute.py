"""Activation recomputation: keep a layer's inputs, not its activations, and run it again in
backward.

For backward, training keeps every intermediate array of every layer. Per encoder layer of a
batch of B sequences of T tokens (d = d_model, H heads, d_ff = 4d), that is about 17·B·T·d
numbers in the B·T·d terms (the layer norms' inputs and outputs, Q, K, V, the heads' outputs,
the feed-forward's 4d-wide hidden layer twice, the dropout masks) and 2·B·H·T² in the attention
terms (the softmax weights and their dropout mask): chapter 17 derives them from the shapes and
measures them. The model's depth multiplies all of it.

``recompute(layer, *inputs)`` keeps only the layer's inputs. Its forward runs the layer without
recording a graph, so the layer's intermediates are freed at once; its backward runs the layer
again, this time recording, and backpropagates through that graph straight away. One more
forward per layer buys the memory of every layer's activations but one (Chen et al. 2016,
"Training deep nets with sublinear memory cost"). ``nn.Encoder``, ``nn.Decoder``,
``nn.TextEncoder`` and the models built on them take ``recompute=True``.

Dropout must drop the same units both times, or the gradient would belong to another function:
the forward records where the shared generator stood (``backend.recorded_draws``), and the
backward draws again from there (``backend.replayed_draws``).
"""

from minitransformer.autograd import Function
from minitransformer.backend import (
    array_module,
    is_grad_enabled,
    recorded_draws,
    replayed_draws,
    set_grad_enabled,
)
from minitransformer.tensor import Tensor

__all__ = ["Recompute", "recompute"]


class Recompute(Function):
    """y = f(x_1, …, x_n; θ) for a layer f, with none of f's intermediates kept for backward

    Backward runs f again on the saved inputs (the same dropout masks), then backpropagates
    g = dL/dy through that second run:

        dL/dx_i = (∂y/∂x_i)ᵀ g,    dL/dθ_j = (∂y/∂θ_j)ᵀ g

    ``apply`` takes the tensors x_i followed by the layer's parameters θ_j, so that the engine
    hands each parameter its gradient as it does for any input.
    """

    @staticmethod
    def forward(ctx, *arrays, layer, n_inputs, options):
        inputs = arrays[:n_inputs]
        ctx.save_for_backward(*inputs)
        ctx.layer, ctx.options = layer, options
        previous = set_grad_enabled(False)  # no graph: the layer's intermediates are freed now
        try:
            with recorded_draws(array_module(*inputs)) as ctx.draws:
                return layer(*(Tensor._from_array(x) for x in inputs), **options).data
        finally:
            set_grad_enabled(previous)

    @staticmethod
    def backward(ctx, grad_out):
        n_inputs = len(ctx.saved)
        inputs = [Tensor._from_array(x, requires_grad=needed)
                  for x, needed in zip(ctx.saved, ctx.needs_input_grad)]
        parameters = ctx.inputs[n_inputs:]
        held = [p.grad for p in parameters]  # what earlier passes accumulated stays out of it
        for p in parameters:
            p.grad = None
        previous = set_grad_enabled(True)
        try:
            with replayed_draws(ctx.draws):
                output = ctx.layer(*inputs, **ctx.options)  # f again, recording this time
            output.backward(grad_out)
            found = [p.grad for p in parameters]
        finally:
            set_grad_enabled(previous)
            for p, grad in zip(parameters, held):
                p.grad = grad
        return (*(x.grad for x in inputs), *found)


def recompute(layer, *inputs, **options):
    """``layer(*inputs, **options)``, keeping only ``inputs`` for backward (see Recompute).

    ``inputs`` are the tensors to differentiate through (x, and a decoder's memory); ``options``
    are what needs no gradient (masks). With no graph to record (inside ``no_grad``, or when
    neither an input nor a parameter requires grad) it is the plain call.
    """
    parameters = list(layer.parameters())
    wanted = any(t.requires_grad for t in (*inputs, *parameters))
    if not (wanted and is_grad_enabled()):
        return layer(*inputs, **options)
    return Recompute.apply(*inputs, *parameters, layer=layer, n_inputs=len(inputs),
                           options=options)
