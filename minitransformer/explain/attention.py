"""Step through attention: every named intermediate of one multi-head self-attention call.

    import minitransformer.explain as explain

    steps = explain.attention("the cat sat on the mat", d_model=8, n_heads=2, causal=True)
    steps.show()                      # each step: formula, shape and values, token labels
    steps.show(step=True)             # one step at a time, Enter for the next
    steps["weights", 1]               # a Step: head 1's softmax weights, (T, T)
    steps.heatmaps("attention.png")   # one heatmap of weights per head

The walk-through computes, with the library's own ops and a real ``nn.MultiHeadAttention``:

    Q = X W^Q,   K = X W^K,   V = X W^V                          (T, D) each
    head_h = softmax(Q_h K_hᵀ / √d_k) V_h,   Q_h = X W_h^Q = Q[:, h·d_k:(h+1)·d_k]
    MultiHead(X) = Concat(head_0, ..., head_{H-1}) W^O            (T, D)

and then checks that its step-by-step answer equals ``F.scaled_dot_product_attention`` for each
head and ``MultiHeadAttention.forward`` for the whole layer; a mismatch raises
``ExplainMismatchError``. With ``n_heads=1`` it is single-head attention,
softmax(QKᵀ/√d_k)V with d_k = d_model.

Shape letters: T tokens, D = d_model, H heads, d_k = D / H. Heads are numbered from 0, as array
indices (the paper counts head_1 ... head_h).
"""

import dataclasses
import math
import sys
import textwrap

from minitransformer import backend
from minitransformer.autograd import no_grad
from minitransformer.functional import causal_mask, scaled_dot_product_attention
from minitransformer.nn.attention import MultiHeadAttention
from minitransformer.ops.elementwise import masked_fill
from minitransformer.ops.shape import concat, swapaxes
from minitransformer.ops.softmax import softmax
from minitransformer.tensor import Tensor

__all__ = ["AttentionExplanation", "ExplainMismatchError", "Step", "attention", "format_matrix",
           "format_step"]

DEFAULT_SENTENCE = "the cat sat on the mat"
ROLES = {
    "Q": "The queries: what each token is looking for.",
    "K": "The keys: what each token offers, to be matched against the queries.",
    "V": "The values: what each token passes on when it is attended to.",
}


class ExplainMismatchError(AssertionError):
    """The step-by-step computation disagrees with the library's attention (a library bug)."""


@dataclasses.dataclass
class Step:
    """One named intermediate of attention.

    Attributes:
        key: a short ASCII name to look the step up by: ``X, W_Q, W_K, W_V, Q, K, V, Q_h, K_h,
            V_h, scores, scaled, masked, weights, head, concat, W_O, output``.
        name: the name as the paper writes it (``QKᵀ``, ``W^Q``, ...).
        formula: how it is computed, e.g. ``Q_0 Kᵀ_0``.
        value: the Tensor (no batch axis: (T, D), (T, d_k), (T, T) or (D, D)).
        head: the head it belongs to (0-based), None for steps shared by all heads.
        rows, cols: labels of the value's rows and columns (tokens or feature numbers).
        note: one sentence on what the step means.
    """

    key: str
    name: str
    formula: str
    value: Tensor
    head: int | None = None
    rows: tuple = ()
    cols: tuple = ()
    note: str = ""

    @property
    def shape(self):
        return self.value.shape

    @property
    def title(self):
        where = f"head {self.head}: " if self.head is not None else ""
        return f"{where}{self.name} = {self.formula}"


class AttentionExplanation:
    """The steps of one attention call, in order, with what they were checked against.

    Look a step up by key (``explanation["Q"]``) or by key and head
    (``explanation["weights", 1]``; a per-head key alone gives head 0); iterate for every step
    in order; ``print(explanation)`` prints the whole walk-through.

    Attributes:
        tokens: the T tokens (row and column labels).
        d_model, n_heads, d_k, causal: the setting.
        module: the ``nn.MultiHeadAttention`` whose weights were used.
        steps: the list of ``Step``.
        output: the layer's output (T, D), equal to ``module(X, X, X, mask)[0]``.
        weights: the attention weights (H, T, T), equal to ``module.attention_weights[0]``.
        checks: (what was compared, largest absolute difference) pairs.
    """

    def __init__(self, tokens, module, causal, steps, checks):
        self.tokens = list(tokens)
        self.module = module
        self.d_model, self.n_heads, self.d_k = module.d_model, module.n_heads, module.d_k
        self.causal = causal
        self.steps = steps
        self.checks = checks
        self.output = self["output"].value
        self.weights = module.attention_weights[0]  # (H, T, T)

    def __iter__(self):
        return iter(self.steps)

    def __repr__(self):
        return (f"AttentionExplanation({len(self.tokens)} tokens, d_model={self.d_model}, "
                f"n_heads={self.n_heads}, causal={self.causal}, {len(self)} steps)")

    def __str__(self):
        return self.format()

    def __len__(self):
        return len(self.steps)

    def __getitem__(self, key):
        key, head = key if isinstance(key, tuple) else (key, None)
        for step in self.steps:
            if step.key == key and (head is None or step.head == head):
                return step
        known = sorted({step.key for step in self.steps})
        raise KeyError(f"AttentionExplanation: no step {key!r} (head {head}); steps: {known}")

    def keys(self):
        """(key, head) of every step, in order."""
        return [(step.key, step.head) for step in self.steps]

    def format(self, decimals=3, width=100):
        """The whole walk-through as text: a header, every step, and the checks."""
        parts = [self.header(width)]
        parts += [format_step(s, i, len(self), decimals, width) for i, s in enumerate(self, 1)]
        parts.append(self.footer())
        return "\n\n".join(parts)

    def header(self, width=100):
        """What is explained: the tokens, the sizes, and the formulas."""
        mask = "causal mask (token t sees 0..t)" if self.causal else "no mask"
        about = [f"Multi-head self-attention on {len(self.tokens)} tokens: "
                 f"{' '.join(self.tokens)}",
                 f"d_model = {self.d_model}, heads H = {self.n_heads}, d_k = d_model / H = "
                 f"{self.d_k}, dtype {self['X'].value.dtype}, {mask}"]
        return "\n".join([*(textwrap.fill(line, width) for line in about),
                          "  Attention(Q, K, V) = softmax(QKᵀ / √d_k) V",
                          "  head_h = Attention(X W_h^Q, X W_h^K, X W_h^V)    (h = 0 .. H-1)",
                          "  MultiHead(X) = Concat(head_0, ..., head_{H-1}) W^O"])

    def footer(self):
        lines = ["Checked against the library (largest |difference|):"]
        lines += [f"  {what}: {difference:.1e}" for what, difference in self.checks]
        return "\n".join(lines)

    def show(self, step=False, decimals=3, width=100, file=None, wait=None):
        """Print the walk-through; with ``step=True`` wait for Enter after each step.

        ``wait`` (default: ``input``) is called with a prompt and returns the line typed: "q"
        stops the walk-through. Without an interactive input (end of file) the rest prints
        without waiting.
        """
        file = file or sys.stdout
        wait = wait or input
        print(self.header(width), end="\n\n", file=file)
        for number, one in enumerate(self, 1):
            print(format_step(one, number, len(self), decimals, width), end="\n\n", file=file)
            if step and number < len(self):
                file.flush()
                try:
                    answer = wait("-- Enter: next step, q: quit -- ")
                except (EOFError, OSError):  # no terminal to read from: print the rest
                    step = False
                    continue
                if answer.strip().lower() in ("q", "quit"):
                    return
        print(self.footer(), file=file)

    def heatmaps(self, path, title=None):
        """Write one heatmap of the attention weights per head (query rows, key columns) to a
        PNG; returns its path. Needs matplotlib."""
        from minitransformer.viz import plot_attention

        if title is None:
            kind = "causal " if self.causal else ""
            title = (f"{kind}self-attention weights softmax(QKᵀ/√d_k), d_model={self.d_model}, "
                     f"{self.n_heads} head{'s' if self.n_heads > 1 else ''}")
        mask = causal_mask(len(self.tokens)) if self.causal else None
        return plot_attention(self.weights, self.tokens, path, title=title, mask=mask)


# --------------------------------------------------------------------------- the computation


def attention(sentence=DEFAULT_SENTENCE, d_model=8, n_heads=2, causal=False, seed=0,
              tokens=None, embeddings=None, module=None, dtype=None):
    """Self-attention on a tiny example, one named step at a time; returns the steps.

    Args:
        sentence: words separated by spaces (ignored when ``tokens`` is given).
        d_model, n_heads: the layer's size; d_k = d_model / n_heads.
        causal: apply the decoder's mask (token t attends to tokens 0..t only).
        seed: seeds the token embedding and the layer's weights. The shared generator
            (``manual_seed``) is restored afterwards, so explaining changes no other result.
        tokens: a list of token strings, instead of splitting ``sentence``.
        embeddings: X itself, (T, d_model), instead of the built-in embedding (each distinct
            word gets a fixed random vector, N(0, 1), so a repeated word repeats its row).
        module: an ``nn.MultiHeadAttention`` to explain (its d_model and n_heads are used and
            its biases, if any, enter the formulas); default: a new one, without biases as in
            the paper.
        dtype: "float32" or "float64" (default: the default dtype).

    Shapes: X (T, D) -> output (T, D); the steps hold (T, D), (D, D), (T, d_k) and (T, T)
    matrices (no batch axis). The layer itself runs on (1, T, D).
    """
    tokens = _tokens(sentence, tokens)
    if module is not None:
        if not isinstance(module, MultiHeadAttention):
            raise TypeError(f"explain.attention: module must be an nn.MultiHeadAttention, got "
                            f"{type(module).__name__}")
        d_model, n_heads = module.d_model, module.n_heads
    _check_sizes(d_model, n_heads)
    previous_dtype = backend.get_default_dtype()
    rng_state = backend.get_rng_state()
    try:
        if dtype is not None:
            backend.set_default_dtype(dtype)
        fresh = module is None
        if module is None:
            backend.manual_seed(seed)
            module = MultiHeadAttention(d_model, n_heads, bias=False)
        x = _embed(tokens, d_model, seed, embeddings)
        note = ("Each row is one token's vector (given)." if embeddings is not None else
                "Each row is one token's vector: a fixed random embedding per word, no position "
                "added, so a repeated word repeats its row.")
        training = module.training
        try:
            with no_grad():
                steps, checks = _walk(module.eval(), x, tokens, causal, note,  # no dropout
                                      fresh)
        finally:
            module.train(training)
    finally:
        backend.set_rng_state(rng_state)
        backend.set_default_dtype(previous_dtype)
    return AttentionExplanation(tokens, module, causal, steps, checks)


def _tokens(sentence, tokens):
    if tokens is None:
        if not isinstance(sentence, str):
            raise TypeError(f"explain.attention: sentence must be a str, got "
                            f"{type(sentence).__name__}")
        tokens = sentence.split()
    tokens = [str(token) for token in tokens]
    if not tokens:
        raise ValueError("explain.attention: the sentence has no tokens; give a few words, e.g. "
                         f"{DEFAULT_SENTENCE!r}")
    return tokens


def _check_sizes(d_model, n_heads):
    for name, value in (("d_model", d_model), ("n_heads", n_heads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"explain.attention: {name} must be a positive int, got {value!r}")
    if d_model % n_heads:
        raise ValueError(f"explain.attention: d_model={d_model} is not divisible by "
                         f"n_heads={n_heads}; each head gets d_k = d_model / n_heads dimensions")


def _embed(tokens, d_model, seed, embeddings):
    """X (T, D): the given embeddings, or a fixed N(0, 1) vector per distinct word."""
    dtype = backend.get_default_dtype()
    if embeddings is not None:
        x = Tensor(embeddings.data if isinstance(embeddings, Tensor) else embeddings)
        if x.shape != (len(tokens), d_model):
            raise ValueError(f"explain.attention: embeddings must be (T, d_model) = "
                             f"{(len(tokens), d_model)} for {len(tokens)} tokens, got {x.shape}")
        return x.astype(dtype)
    vocabulary = list(dict.fromkeys(tokens))  # distinct words, in order of first appearance
    table = backend.local_generator(seed).standard_normal((len(vocabulary), d_model))
    rows = [vocabulary.index(token) for token in tokens]
    return Tensor(table[rows], dtype=dtype)  # (T, D)


def _weight(fresh, d_model):
    """(formula, note) of a W^Q, W^K, W^V or W^O printed here: a fresh layer's are random."""
    if fresh:
        return ("a random (d_model, d_model) matrix",
                f"A fresh layer's initial weights, uniform in ±1/√{d_model} (seeded), not "
                "learned: training would change them. ")
    return "the given module's (d_model, d_model) matrix", ""


def _variance_note(scores, scaled, q, k, d_k):
    """The √d_k note, in the numbers just computed: the variance before and after dividing."""
    var = [float(backend.to_numpy(t.data).var()) for t in (scores, scaled, q, k)]
    return (f"Dividing by √d_k = {math.sqrt(d_k):.3g} divides the variance by d_k = {d_k}: "
            f"here {var[0]:.3g} -> {var[1]:.3g}. Were the entries of q and k independent with "
            f"variance 1, QKᵀ would have variance d_k and QKᵀ/√d_k variance 1, so softmax would "
            f"not saturate as d_k grows; here they have variance {var[2]:.3g} and {var[3]:.3g}.")


def _walk(module, x, tokens, causal, note, fresh=False):
    """Every step of ``module`` on X (T, D), then the checks against the library."""
    length, d_k, n_heads = len(tokens), module.d_k, module.n_heads
    features = tuple(str(i) for i in range(module.d_model))
    tok = tuple(tokens)
    steps = [Step("X", "X", "embedding(tokens)", x, rows=tok, cols=features, note=note)]

    def add(*args, **kwargs):
        steps.append(Step(*args, **kwargs))
        return steps[-1].value

    layers = {"Q": module.w_q, "K": module.w_k, "V": module.w_v}
    formula, origin_note = _weight(fresh, module.d_model)
    for letter, layer in layers.items():
        add(f"W_{letter}", f"W^{letter}", formula, layer.weight, rows=features, cols=features,
            note=f"{origin_note}Columns h·d_k..(h+1)·d_k - 1 are head h's W_h^{letter} "
                 f"(d_k = {d_k}).")
    projected = {}
    for letter, layer in layers.items():
        bias = f" + b^{letter}" if layer.bias is not None else ""
        projected[letter] = add(letter, letter, f"X W^{letter}{bias}", layer(x), rows=tok,
                                cols=features, note=ROLES[letter])
    mask = causal_mask(length) if causal else None  # (T, T) bool, True = may attend
    heads = []
    for h in range(n_heads):
        columns = slice(h * d_k, (h + 1) * d_k)
        span = f"[:, {columns.start}:{columns.stop}]"
        per_head = {}
        for letter in "QKV":
            per_head[letter] = add(
                f"{letter}_h", f"{letter}_{h}", f"X W_{h}^{letter} = {letter}{span}",
                projected[letter][:, columns], head=h, rows=tok, cols=features[columns],
                note=f"Head {h} reads features {columns.start}..{columns.stop - 1} of {letter}.")
        q, k, v = per_head["Q"], per_head["K"], per_head["V"]
        scores = add("scores", "QKᵀ", f"Q_{h} K_{h}ᵀ", q @ swapaxes(k, -1, -2), head=h,
                     rows=tok, cols=tok,
                     note="Row t: how well query t matches every key (a dot product).")
        scaled_scores = scores / math.sqrt(d_k)
        scaled = add("scaled", "QKᵀ/√d_k", f"QKᵀ / √{d_k}", scaled_scores, head=h,
                     rows=tok, cols=tok,
                     note=_variance_note(scores, scaled_scores, q, k, d_k))
        if mask is not None:
            scaled = add("masked", "masked", "-inf where key s > query t (the future)",
                         masked_fill(scaled, ~mask, float("-inf")), head=h, rows=tok, cols=tok,
                         note="e^-inf = 0: a token gets no weight on the tokens after it.")
        source = "masked" if mask is not None else "QKᵀ/√d_k"
        weights = add("weights", "softmax", f"softmax({source}) along each row",
                      softmax(scaled, axis=-1),
                      head=h, rows=tok, cols=tok,
                      note="Each row is a probability distribution over the keys (sums to 1).")
        heads.append(add("head", "weights·V", f"softmax(...) V_{h}", weights @ v, head=h,
                         rows=tok, cols=features[columns],
                         note="Each token's output: the V rows averaged with its weights."))
    merged = add("concat", "Concat", "Concat(head_0, ..., head_{H-1})", concat(heads, axis=-1),
                 rows=tok, cols=features, note="The heads side by side again (merge_heads).")
    add("W_O", "W^O", formula, module.w_o.weight, rows=features, cols=features,
        note=f"{origin_note}The output projection mixes what the heads found.")
    bias = " + b^O" if module.w_o.bias is not None else ""
    add("output", "MultiHead(X)", f"Concat(...) W^O{bias}", module.w_o(merged), rows=tok,
        cols=features, note="The layer's output: one new vector per token.")
    return steps, _check(module, x, mask, steps)


def _check(module, x, mask, steps):
    """Compare the steps with F.scaled_dot_product_attention (each head on its own) and with
    MultiHeadAttention.forward (all heads at once, through split_heads and merge_heads)."""
    by_key = {(step.key, step.head): step.value for step in steps}
    checks = []
    for h in range(module.n_heads):
        q, k, v = (by_key[f"{letter}_h", h] for letter in "QKV")
        output, weights = scaled_dot_product_attention(q, k, v, mask)
        checks.append((f"head {h} weights == F.scaled_dot_product_attention",
                       _difference(by_key["weights", h], weights)))
        checks.append((f"head {h} output == F.scaled_dot_product_attention",
                       _difference(by_key["head", h], output)))
    batch = x.reshape(1, *x.shape)  # (1, T, D): the layer wants a batch axis
    output = module(batch, batch, batch, mask)[0]  # (T, D)
    all_weights = module.attention_weights[0]  # (H, T, T)
    for h in range(module.n_heads):
        checks.append((f"head {h} weights == MultiHeadAttention.attention_weights",
                       _difference(by_key["weights", h], all_weights[h])))
    checks.append(("output == MultiHeadAttention(X, X, X)",
                   _difference(by_key["output", None], output)))
    tolerance = 1e-10 if x.dtype.itemsize == 8 else 1e-5
    for what, difference in checks:
        if not difference <= tolerance:
            raise ExplainMismatchError(f"explain.attention: {what} fails: the largest difference "
                                       f"is {difference:.3e}, more than {tolerance:.0e}")
    return checks


def _difference(a, b):
    return (a - b).abs().max().item()


# --------------------------------------------------------------------------- printing


def format_step(step, number=None, total=None, decimals=3, width=100):
    """One step as text: a title line with the shape, the note, then the values (rounded; token
    labels on rows and, for (T, T) score matrices, on columns). Wide matrices are cut into
    column blocks that fit ``width``."""
    counter = f"[{number}/{total}] " if number is not None else ""
    title = f"{counter}{step.title}"
    shape = f"shape {step.shape}"
    pad = max(1, width - len(title) - len(shape))
    lines = [f"{title}{' ' * pad}{shape}" if pad > 1 else f"{title}  {shape}"]
    if step.note:
        lines.append(textwrap.fill(step.note, width, initial_indent="  ", subsequent_indent="  "))
    lines.append(format_matrix(step.value.numpy(), step.rows, step.cols, decimals, width))
    return "\n".join(lines)


def format_matrix(values, rows=(), cols=(), decimals=3, width=100, indent=2):
    """A 1-D or 2-D NumPy array as an aligned table with row and column labels."""
    if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
        raise ValueError(f"format_matrix: decimals must be an int >= 0, got {decimals!r}")
    if values.ndim == 1:
        values = values.reshape(1, -1)
        rows = ("",)
    rows = [_fit(label, 10) for label in (rows or range(values.shape[0]))]
    cols = [_fit(label, 8) for label in (cols or range(values.shape[1]))]
    cells = [[_number(v, decimals) for v in row] for row in values.tolist()]
    cell = max([len(c) for row in cells for c in row] + [len(c) for c in cols])
    label = max(len(r) for r in rows)
    per_block = max(1, (width - indent - label) // (cell + 1))
    blocks = []
    for start in range(0, len(cols), per_block):
        stop = min(start + per_block, len(cols))
        head = " " * (indent + label) + "".join(f" {c:>{cell}}" for c in cols[start:stop])
        body = [" " * indent + f"{r:<{label}}" + "".join(f" {c:>{cell}}" for c in row[start:stop])
                for r, row in zip(rows, cells)]
        blocks.append("\n".join([head, *body]))
    return "\n".join(blocks)


def _fit(label, size):
    label = str(label)
    return label if len(label) <= size else label[:size - 1] + "…"


def _number(value, decimals):
    if value == float("-inf"):
        return "-inf"
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-0.") and float(text) == 0 else text  # no "-0.000"
