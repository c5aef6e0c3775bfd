"""Reverse-mode automatic differentiation: Function, Context, the backward engine and no_grad.

A Function is one primitive op. Its ``forward`` runs on raw backend arrays and returns one array;
its ``backward`` receives dL/d(output) and returns dL/d(input) for each input, also as raw arrays::

    class Mul(Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, grad_out):
            x, y = ctx.saved
            return grad_out * y, grad_out * x

``Mul.apply(a, b)`` runs forward and, when an input requires grad, records a ``Context``: the node
of the graph that remembers which Function ran, on which input tensors, and what it saved.
``backward(loss)`` then visits the nodes from the loss back to the leaves, in reverse topological
order, and hands each node the gradient of its output.

Rules the engine enforces, so a wrong op fails loudly instead of training quietly wrong:

- each gradient an op returns must have its input's shape and dtype (the op is named otherwise);
- gradients of a tensor used several times add up (``+``), as in micrograd;
- a gradient array an op's backward has just made (``_is_fresh``) belongs to the engine: it
  becomes a leaf's first ``.grad`` without a copy, and later gradients of the same tensor are
  added into it in place; any other array (a view, a pass-through ``grad_out``) is copied first;
- leaf tensors (those no op created, e.g. parameters) accumulate ``.grad`` across backward calls, as
  in PyTorch: call ``zero_grad`` (or set ``.grad = None``) between steps; the gradients of
  intermediate tensors are freed (unless ``retain_grad()`` asked to keep them);
- after backward the saved arrays are freed; a second backward through the same graph raises
  ``GraphFreedError`` unless the first one passed ``retain_graph=True``.

Backward works on raw arrays, so there is no double backward (no gradients of gradients).
"""

import contextlib

from minitransformer.backend import array_module, is_grad_enabled, set_grad_enabled
from minitransformer.errors import DTypeError, GraphFreedError, ShapeError

__all__ = ["Context", "Function", "backward", "no_grad"]


class Context:
    """One node of the graph: the Function that ran, its inputs, and what forward saved.

    ``forward`` stores arrays with ``ctx.save_for_backward(*arrays)`` (read back as ``ctx.saved``)
    and any other values as plain attributes (``ctx.axis = axis``).

    Two flags, set by the engine just before it calls ``backward``, let a backward work in place
    (as a hand-written step would) instead of making new arrays; both are False otherwise (e.g.
    when a test calls ``backward`` by hand):

    - ``last_backward``: the saved arrays are freed right after this call (no ``retain_graph``),
      so backward may overwrite a saved array that only this op holds (one its forward made and
      did not return);
    - ``grad_out_owned``: ``grad_out`` is an array of the engine's that nothing else refers to,
      so backward may overwrite it (and return it).
    """

    def __init__(self, function, inputs, needs_input_grad):
        self.function = function  # the Function subclass (not an instance)
        self.inputs = inputs  # the input Tensors, or constants, in call order
        self.needs_input_grad = needs_input_grad  # one bool per input
        self.saved = ()
        self.freed = False
        self.last_backward = self.grad_out_owned = False

    def save_for_backward(self, *arrays):
        """Keep ``arrays`` for backward (read back as ``ctx.saved``)."""
        self.saved = arrays

    def free(self):
        """Drop everything forward saved; the node stays so a later backward can say so."""
        # keep only the graph's shape, for inspection
        function, inputs, needs_input_grad = self.function, self.inputs, self.needs_input_grad
        vars(self).clear()
        self.function, self.inputs, self.needs_input_grad = function, inputs, needs_input_grad
        self.freed = True


class Function:
    """Base class of every primitive op: subclasses write ``forward`` and ``backward``."""

    @staticmethod
    def forward(ctx, *arrays, **params):
        """Compute the output array from input arrays (and keyword parameters)."""
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_out):
        """Return dL/d(input) for each input, given dL/d(output); None where not needed."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Run ``forward`` on the inputs' arrays; record the node if any input requires grad.

        ``inputs`` are Tensors or constants (Python numbers, None); keyword ``params`` are passed
        to forward unchanged (axes, shapes, probabilities).
        """
        arrays, needs = [], []  # one pass over the inputs (this runs for every op)
        for t in inputs:
            is_tensor = isinstance(t, Tensor)
            arrays.append(t.data if is_tensor else t)
            needs.append(is_tensor and t._requires_grad)
        xp = array_module(*arrays)  # raises DeviceMismatchError when devices differ
        ctx = Context(cls, inputs, tuple(needs))
        out = xp.asarray(cls.forward(ctx, *arrays, **params))
        if True in needs and is_grad_enabled() and out.dtype.kind == "f":
            return Tensor._from_array(out, requires_grad=True, creator=ctx)
        return Tensor._from_array(out)  # nothing to record: ctx and what it saved are dropped


class no_grad(contextlib.ContextDecorator):  # noqa: N801 - a context manager, named as PyTorch
    """Context manager (or decorator) in which no graph is recorded: evaluation, updates.

    >>> with no_grad():
    ...     y = model(x)        # y.requires_grad is False; nothing is saved for backward
    """

    def __init__(self):
        self._previous = []

    def __enter__(self):
        self._previous.append(set_grad_enabled(False))
        return self

    def __exit__(self, *exc_info):
        set_grad_enabled(self._previous.pop())
        return False


def _topological_order(root):
    """The non-leaf tensors that lead to ``root``, each after every tensor it was computed from.

    Iterative depth-first search with an explicit stack, so a chain of 10,000 ops does not hit
    Python's recursion limit.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node.creator.inputs:
            if getattr(parent, "creator", None) is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order


def _check_gradient(ctx, position, grad):
    """Each gradient must match its input's shape and dtype; name the op when it does not."""
    data = ctx.inputs[position].data
    if grad.shape != data.shape or grad.dtype != data.dtype:
        name = ctx.function.__name__
        error = ShapeError if grad.shape != data.shape else DTypeError
        raise error(
            f"backward: {name}.backward returned a gradient of shape {tuple(grad.shape)} and dtype "
            f"{grad.dtype} for input {position}, which has shape {tuple(data.shape)} and dtype "
            f"{data.dtype}; a gradient must match its input"
        )


def _accumulate_leaf(leaf, grad, fresh=False):
    """Add ``grad`` into ``leaf.grad``. The first time, a ``fresh`` array is stored as it is;
    any other is copied (it may be a view, or a gradient that also flows elsewhere)."""
    if leaf.grad is None:
        leaf.grad = grad if fresh else array_module(grad).array(grad, copy=True)
    else:
        leaf.grad += grad


def _is_fresh(grad, ctx, handled):
    """Whether ``grad``, returned by ``ctx``'s backward, is a new array nothing else refers to:
    it owns its memory (not a view), it is none of the arrays the op saved or received as input,
    and no gradient so far in this backward was the same array (``handled`` holds their ids:
    ``Add`` hands one ``grad_out`` to both inputs)."""
    if id(grad) in handled or getattr(grad, "base", 0) is not None:
        return False
    if not isinstance(grad, array_module(grad).ndarray):  # a NumPy scalar from 0-d arithmetic
        return False
    for array in ctx.saved:
        if grad is array:
            return False
    for value in ctx.inputs:
        if grad is getattr(value, "data", None):
            return False
    return True


def backward(root, grad=None, retain_graph=False):
    """Backpropagate from ``root``: fill ``.grad`` of every leaf that requires grad.

    ``grad`` is dL/d(root), needed unless ``root`` holds one element (then it is 1).
    """
    if not root.requires_grad:
        raise RuntimeError(
            f"backward: this tensor (shape {root.shape}) does not require grad; make a leaf with "
            "requires_grad=True and compute from it (and not inside no_grad)"
        )
    xp = array_module(root.data)
    if grad is None:
        if root.data.size != 1:
            raise ShapeError(
                f"backward: the tensor has shape {root.shape}; backward() without grad works only "
                "for a one-element tensor (a scalar loss). Reduce it first (loss.sum(), "
                "loss.mean()) or pass grad= of the same shape"
            )
        grad = xp.ones_like(root.data)
    else:
        grad = xp.asarray(getattr(grad, "data", grad), dtype=root.dtype)
        if grad.shape != root.data.shape:
            raise ShapeError(
                f"backward: grad has shape {tuple(grad.shape)} but the tensor has shape "
                f"{root.shape}; they must match"
            )
    if root.creator is None:
        _accumulate_leaf(root, grad)
        return
    grads = {id(root): grad}  # id(tensor) -> dL/d(tensor), for tensors still to visit
    owned = set()  # keys of ``grads`` whose array is the engine's own (to add into in place)
    handled = {id(grad)}  # ids of every gradient array met so far
    for node in reversed(_topological_order(root)):
        grad_out = grads.pop(id(node), None)
        if grad_out is None:
            continue  # no path from root carried a gradient here
        grad_out_owned = id(node) in owned
        owned.discard(id(node))
        if node.retains_grad:
            _accumulate_leaf(node, grad_out)
        ctx = node.creator
        if ctx.freed:
            raise GraphFreedError(
                f"backward: the graph through {ctx.function.__name__} was freed by an earlier "
                "backward(); pass retain_graph=True to the earlier call to backpropagate twice"
            )
        ctx.last_backward, ctx.grad_out_owned = not retain_graph, grad_out_owned
        input_grads = ctx.function.backward(ctx, grad_out)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(ctx.inputs):
            raise RuntimeError(
                f"backward: {ctx.function.__name__}.backward returned {len(input_grads)} "
                f"gradients for {len(ctx.inputs)} inputs"
            )
        for position, (parent, input_grad) in enumerate(zip(ctx.inputs, input_grads)):
            if input_grad is None or not ctx.needs_input_grad[position]:
                continue
            _check_gradient(ctx, position, input_grad)
            fresh = _is_fresh(input_grad, ctx, handled)
            handled.add(id(input_grad))
            key = id(parent)
            if parent.creator is None:
                _accumulate_leaf(parent, input_grad, fresh)
            elif key not in grads:
                grads[key] = input_grad
                if fresh:
                    owned.add(key)
            elif key in owned:
                grads[key] += input_grad  # the engine's own array: add in place
            elif fresh:
                input_grad += grads[key]
                grads[key] = input_grad
                owned.add(key)
            else:
                grads[key] = grads[key] + input_grad  # a new array, now the engine's
                handled.add(id(grads[key]))
                owned.add(key)
        if not retain_graph:
            ctx.free()


# tensor.py imports this module too; importing at the bottom lets either be imported first.
from minitransformer.tensor import Tensor  # noqa: E402
