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
- a gradient array an op's backward has just made belongs to the engine (``Gradients`` keeps
  track): it becomes a leaf's first ``.grad`` without a copy, later gradients of the same tensor
  are added into it in place, and the op it reaches may write into it (``ctx.writable``); any
  other array (a view, a pass-through ``grad_out``) is copied before anything writes to it;
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
from minitransformer.tensor import Tensor

__all__ = ["Context", "Function", "Gradients", "backward", "no_grad", "saved_bytes"]


class Context:
    """One node of the graph: the Function that ran, its inputs, and what forward saved.

    ``forward`` stores arrays with ``ctx.save_for_backward(*arrays)`` (read back as ``ctx.saved``)
    and any other values as plain attributes (``ctx.axis = axis``).

    A backward that wants to compute in place, as a hand-written step would, asks for an array it
    may overwrite, and gets the array itself when nothing else can see the change, a copy
    otherwise:

    - ``ctx.writable(grad_out)``: ``grad_out`` itself when the engine owns it (an array the
      previous op's backward made, that nothing else refers to);
    - ``ctx.writable_saved(array)``: a saved array itself when it is freed right after this
      backward (no ``retain_graph``) and forward did not return it.

    Called by hand (a test calling ``backward`` directly), both always copy.
    """

    def __init__(self, function, inputs, needs_input_grad):
        self.function = function  # the Function subclass (not an instance)
        self.inputs = inputs  # the input Tensors, or constants, in call order
        self.needs_input_grad = needs_input_grad  # one bool per input
        self.saved = ()
        self.freed = False
        self.output_id = None  # id() of forward's output array, set by Function.apply
        self.last_backward = self.grad_out_owned = False  # set by run_backward

    def save_for_backward(self, *arrays):
        """Keep ``arrays`` for backward (read back as ``ctx.saved``)."""
        self.saved = arrays

    def writable(self, grad_out):
        """``grad_out`` to overwrite: itself when the engine owns it, else a copy."""
        return grad_out if self.grad_out_owned else grad_out.copy()

    def writable_saved(self, array):
        """A saved array to overwrite: itself when it is freed after this backward and is not
        forward's output, else a copy."""
        if self.last_backward and id(array) != self.output_id:
            return array
        return array.copy()

    def run_backward(self, grad_out, grad_out_owned, last):
        """Call the Function's backward on dL/d(output); return [(input, dL/d(input))] for the
        inputs that need a gradient, each checked against its input's shape and dtype."""
        if self.freed:
            raise GraphFreedError(
                f"backward: the graph through {self.function.__name__} was freed by an earlier "
                "backward(); pass retain_graph=True to the earlier call to backpropagate twice"
            )
        self.grad_out_owned, self.last_backward = grad_out_owned, last
        grads = self.function.backward(self, grad_out)
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) != len(self.inputs):
            raise RuntimeError(f"backward: {self.function.__name__}.backward returned "
                               f"{len(grads)} gradients for {len(self.inputs)} inputs")
        pairs = []
        for position, (parent, grad) in enumerate(zip(self.inputs, grads)):
            if grad is not None and self.needs_input_grad[position]:
                _check_gradient(self, position, grad)
                pairs.append((parent, grad))
        return pairs

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
            ctx.output_id = id(out)  # writable_saved never hands out the output itself
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


def saved_bytes(root, by_function=False):
    """The activation memory the graph below ``root`` keeps for backward: the bytes of the
    arrays its nodes saved, each memory buffer once (a view counts as the array it looks into:
    the Q, K and V projections save three views of one input), leaving out the leaves' own
    arrays (weights and inputs, which exist anyway).

    ``by_function=True`` gives ``{Function name: bytes}`` instead, a buffer saved by several
    Functions counted under the first one found. Used to measure what activation recomputation
    (``nn.recompute``) saves.
    """
    nodes = _topological_order(root)
    leaves = {id(_buffer(t.data)) for node in nodes for t in node.creator.inputs
              if isinstance(t, Tensor) and t.creator is None}
    buffers, owners = {}, {}
    for node in nodes:
        for array in () if node.creator.freed else node.creator.saved:  # freed: nothing kept
            buffer = _buffer(array)
            if hasattr(buffer, "nbytes") and id(buffer) not in buffers and id(buffer) not in leaves:
                buffers[id(buffer)] = buffer
                owners[id(buffer)] = node.creator.function.__name__
    if not by_function:
        return sum(buffer.nbytes for buffer in buffers.values())
    totals = {}
    for key, buffer in buffers.items():
        totals[owners[key]] = totals.get(owners[key], 0) + buffer.nbytes
    return totals


def _buffer(array):
    """The array that owns the memory ``array`` looks into (itself when it is no view)."""
    while isinstance(getattr(array, "base", None), type(array)):
        array = array.base
    return array


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


def _accumulate_leaf(leaf, grad, owned=False):
    """Add ``grad`` into ``leaf.grad``. The first time, an ``owned`` array is stored as it is;
    any other is copied (it may be a view, or a gradient that also flows elsewhere)."""
    if leaf.grad is None:
        leaf.grad = grad if owned else array_module(grad).array(grad, copy=True)
    else:
        leaf.grad += grad


class Gradients:
    """The gradients one backward pass has still to hand on: dL/d(tensor) for each tensor not
    yet visited, and which of those arrays the engine owns.

    The engine owns an array an op's backward has just made and that nothing else refers to:
    not a view, not an array the op saved or received, and not one handed out before in this
    pass (``Add`` returns one ``grad_out`` to both of its inputs). An owned array may be
    overwritten: the next contribution to the same tensor is added into it in place, a leaf
    keeps it as its ``.grad`` without a copy, and the op it reaches may write into it
    (``ctx.writable``). Every other array is left as it is, so summing with it makes a new one.
    """

    def __init__(self, root, grad):
        self.grads = {id(root): grad}  # id(tensor) -> dL/d(tensor)
        self.owned = set()  # ids of the tensors whose array the engine owns
        self.seen = {id(grad)}  # ids of every gradient array met in this pass

    def pop(self, tensor):
        """(dL/d(tensor), whether the engine owns it); (None, False) when no path reached it."""
        owned = id(tensor) in self.owned
        self.owned.discard(id(tensor))
        return self.grads.pop(id(tensor), None), owned

    def add(self, tensor, grad, ctx):
        """Add ``grad``, one contribution returned by ``ctx``'s backward, to dL/d(tensor)."""
        new = self._is_new(grad, ctx)
        self.seen.add(id(grad))
        key = id(tensor)
        if tensor.creator is None:
            _accumulate_leaf(tensor, grad, owned=new)
            return
        if key not in self.grads:
            self.grads[key] = grad
        elif key in self.owned:
            self.grads[key] += grad
        elif new:
            grad += self.grads[key]
            self.grads[key] = grad
        else:
            self.grads[key] = self.grads[key] + grad
            self.seen.add(id(self.grads[key]))
            new = True
        if new:
            self.owned.add(key)

    def _is_new(self, grad, ctx):
        """Whether ``grad`` is an array ``ctx``'s backward has just made, referred to nowhere
        else (a NumPy scalar from 0-d arithmetic is not an array to write into)."""
        if id(grad) in self.seen or getattr(grad, "base", 0) is not None:
            return False
        if not isinstance(grad, array_module(grad).ndarray):
            return False
        for array in ctx.saved:
            if grad is array:
                return False
        for value in ctx.inputs:
            if grad is getattr(value, "data", None):
                return False
        return True


def _root_gradient(root, grad):
    """dL/d(root) as an array of root's shape and dtype: 1 for a one-element root."""
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
        return xp.ones_like(root.data)
    grad = xp.asarray(getattr(grad, "data", grad), dtype=root.dtype)
    if grad.shape != root.data.shape:
        raise ShapeError(f"backward: grad has shape {tuple(grad.shape)} but the tensor has shape "
                         f"{root.shape}; they must match")
    return grad


def backward(root, grad=None, retain_graph=False):
    """Backpropagate from ``root``: fill ``.grad`` of every leaf that requires grad.

    ``grad`` is dL/d(root), needed unless ``root`` holds one element (then it is 1). The chain
    rule, node by node from the root back to the leaves: each node's Function turns dL/d(output)
    into dL/d(input) for each input, and what reaches one tensor along several paths adds up.
    """
    grad = _root_gradient(root, grad)
    if root.creator is None:
        _accumulate_leaf(root, grad)
        return
    pending = Gradients(root, grad)
    for node in reversed(_topological_order(root)):
        grad_out, owned = pending.pop(node)
        if grad_out is None:
            continue  # no path from root carried a gradient here
        if node.retains_grad:
            _accumulate_leaf(node, grad_out)
        ctx = node.creator
        for parent, input_grad in ctx.run_backward(grad_out, owned, last=not retain_graph):
            pending.add(parent, input_grad, ctx)
        if not retain_graph:
            ctx.free()
