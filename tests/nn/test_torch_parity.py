"""Parity with PyTorch: our attention, Transformer layers and stacks against torch.nn's, forward
and backward, in float64. Skipped where PyTorch is not installed (it is never a dependency).

Each test builds one of our modules, copies its weights into the matching torch module (ours ->
torch, through one table of links that the gradient comparison reads too), runs both on the same
inputs and masks, back-propagates the same random upstream gradient, and compares the outputs,
every parameter's gradient by name, and the inputs' gradients.

What differs between the two, and how the links and masks bridge it:
- Linear weights: ours (in, out) computing x W + b, torch's (out, in) computing x Wᵀ + b.
- Attention: our four Linears w_q, w_k, w_v, w_o; torch packs q, k, v as the row blocks of
  ``in_proj_weight`` (3·d, d) and ``in_proj_bias`` (3·d,), and calls W^O ``out_proj``.
- Masks: ours True = may attend; torch's boolean ``attn_mask`` and ``*key_padding_mask`` True =
  may NOT attend. Torch's masks here are built from the token ids and with torch's own functions,
  never by inverting ours, so a polarity slip in ``causal_mask`` or ``padding_mask`` would show.
- Layer names: our FeedForward ``ff.linear1``/``ff.linear2`` are torch's ``linear1``/``linear2``;
  our decoder's ``cross_attn`` is torch's ``multihead_attn``.

Torch modules run in ``eval()`` with dropout 0. Their fused fast paths (the fused encoder layer,
nested tensors for padded batches, native MHA), which compute differently and zero padded outputs,
run only in eval mode when autograd is off or no input or weight needs a gradient; every call here
records gradients, so the ordinary composite path runs. ``test_torch_fast_path_is_not_taken``
checks that premise: were it to break, ``.train()`` with dropout 0 also avoids the fast paths.
"""

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.functional import causal_mask, padding_mask
from minitransformer.nn import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    FeedForward,
    LayerNorm,
    Module,
    MultiHeadAttention,
)

torch = pytest.importorskip("torch")

# Both sides compute in float64 with the same formulas in nearly the same order, so they agree
# to rounding (~1e-15); 1e-9 leaves room for reordered sums yet catches any real bug. ATOL is for
# values that are zero in exact arithmetic and rounding noise in both: the key projection's bias
# gets no gradient (adding q·b to every score of a row leaves the softmax unchanged), nor does
# the memory at padded key positions of cross-attention.
RTOL, ATOL = 1e-9, 1e-12
PAD = 0


@pytest.fixture(autouse=True)
def float64():
    """Our modules in float64 (conftest restores float32 after each test); torch modules are
    converted with ``.double()``, so torch's global default dtype is never touched."""
    mt.set_default_dtype("float64")


# --------------------------------------------------------------------------- weights: ours -> torch


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _link_linear(links, name, ours, weight, bias, rows=slice(None)):
    """Our Linear ``name`` is ``weight[rows]`` (transposed) and ``bias[rows]`` in torch."""
    links.append((_join(name, "weight"), weight, rows, True))
    if ours.bias is not None:
        links.append((_join(name, "bias"), bias, rows, False))


def _link_norm(links, name, theirs):
    links.append((_join(name, "weight"), theirs.weight, slice(None), False))
    links.append((_join(name, "bias"), theirs.bias, slice(None), False))


def _link_attention(links, name, ours, theirs):
    """w_q, w_k, w_v are the row blocks 0, 1, 2 of torch's packed in_proj; w_o is out_proj."""
    d_model = ours.d_model
    for block, projection in enumerate(("w_q", "w_k", "w_v")):
        rows = slice(block * d_model, (block + 1) * d_model)
        _link_linear(links, _join(name, projection), getattr(ours, projection),
                     theirs.in_proj_weight, theirs.in_proj_bias, rows)
    _link_linear(links, _join(name, "w_o"), ours.w_o, theirs.out_proj.weight, theirs.out_proj.bias)


def _link_feed_forward(links, name, ours, theirs):
    """Our FeedForward against any torch module holding ``linear1`` and ``linear2`` (a torch
    Transformer layer keeps them directly, with no feed-forward sub-module)."""
    for part in ("linear1", "linear2"):
        torch_linear = getattr(theirs, part)
        _link_linear(links, _join(name, part), getattr(ours, part), torch_linear.weight,
                     torch_linear.bias)


def _link_encoder_layer(links, name, ours, theirs):
    _link_attention(links, _join(name, "self_attn"), ours.self_attn, theirs.self_attn)
    _link_feed_forward(links, _join(name, "ff"), ours.ff, theirs)
    for norm in ("norm1", "norm2"):
        _link_norm(links, _join(name, norm), getattr(theirs, norm))


def _link_decoder_layer(links, name, ours, theirs):
    _link_attention(links, _join(name, "self_attn"), ours.self_attn, theirs.self_attn)
    _link_attention(links, _join(name, "cross_attn"), ours.cross_attn, theirs.multihead_attn)
    _link_feed_forward(links, _join(name, "ff"), ours.ff, theirs)
    for norm in ("norm1", "norm2", "norm3"):
        _link_norm(links, _join(name, norm), getattr(theirs, norm))


def _link_stack(links, name, ours, theirs, link_layer):
    """Encoder or Decoder against torch's TransformerEncoder or TransformerDecoder."""
    assert len(ours.layers) == len(theirs.layers)
    for index, (our_layer, torch_layer) in enumerate(zip(ours.layers, theirs.layers)):
        link_layer(links, _join(name, f"layers.{index}"), our_layer, torch_layer)
    assert (ours.norm is None) == (theirs.norm is None)
    if ours.norm is not None:
        _link_norm(links, _join(name, "norm"), theirs.norm)


def parameter_links(ours, theirs, name=""):
    """(our parameter's name, torch parameter, rows of it, transposed?) for every parameter."""
    links = []
    if isinstance(ours, MultiHeadAttention):
        _link_attention(links, name, ours, theirs)
    elif isinstance(ours, FeedForward):
        _link_feed_forward(links, name, ours, theirs)
    elif isinstance(ours, LayerNorm):
        _link_norm(links, name, theirs)
    elif isinstance(ours, EncoderLayer):
        _link_encoder_layer(links, name, ours, theirs)
    elif isinstance(ours, DecoderLayer):
        _link_decoder_layer(links, name, ours, theirs)
    elif isinstance(ours, Encoder):
        _link_stack(links, name, ours, theirs, _link_encoder_layer)
    elif isinstance(ours, Decoder):
        _link_stack(links, name, ours, theirs, _link_decoder_layer)
    elif isinstance(ours, EncoderDecoder):
        _link_stack(links, _join(name, "encoder"), ours.encoder, theirs.encoder,
                    _link_encoder_layer)
        _link_stack(links, _join(name, "decoder"), ours.decoder, theirs.decoder,
                    _link_decoder_layer)
    else:
        raise TypeError(f"parameter_links: no torch counterpart known for {type(ours).__name__}")
    return links


def copy_weights(ours, theirs):
    """Copy every parameter of our module into the torch module, in place; return the links.

    Fails unless the links cover each of our parameters once and every number of every torch
    parameter once, so a weight left at torch's random initialisation cannot go unnoticed.
    """
    links = parameter_links(ours, theirs)
    our_parameters = dict(ours.named_parameters())
    linked = [name for name, *_ in links]
    assert sorted(linked) == sorted(our_parameters), "links do not cover our parameters once"
    covered = {id(p): torch.zeros_like(p, dtype=torch.int64) for p in theirs.parameters()}
    with torch.no_grad():
        for name, parameter, rows, transpose in links:
            value = our_parameters[name].numpy()
            parameter[rows] = torch.from_numpy(value.T if transpose else value)
            covered[id(parameter)][rows] += 1
    assert all(bool((count == 1).all()) for count in covered.values()), \
        "some torch parameter is not covered exactly once by the links"
    return links


# --------------------------------------------------------------------------- running and comparing


class EncoderDecoder(Module):
    """Our Encoder and Decoder as torch.nn.Transformer wires them: embeddings in, no projection.

    Shapes: src (B, S, d_model), tgt (B, T, d_model) -> (B, T, d_model).
    """

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None):
        return self.decoder(tgt, self.encoder(src, src_mask), tgt_mask, memory_mask)


def _inputs(rng, *shapes):
    """The same random float64 inputs for both sides, each recording its gradient."""
    arrays = [rng.standard_normal(shape) for shape in shapes]
    ours = [mt.tensor(array, requires_grad=True) for array in arrays]
    theirs = [torch.tensor(array, requires_grad=True) for array in arrays]
    return ours, theirs


def _ids(rng, batch, length, pad_counts):
    """Token ids (B, L) in 1..9, the last ``pad_counts[b]`` positions of row b padding."""
    ids = rng.integers(1, 10, size=(batch, length))
    for row, count in enumerate(pad_counts):
        ids[row, length - count:] = PAD
    return ids


def _relative_difference(ours, theirs):
    """max |ours - theirs| / |theirs| over the entries that are not zero up to ATOL."""
    significant = np.abs(theirs) > ATOL
    if not significant.any():
        return 0.0
    return float(np.max(np.abs(ours - theirs)[significant] / np.abs(theirs)[significant]))


def _backward_and_compare(rng, ours, theirs, links, our_out, torch_out, our_inputs, torch_inputs,
                          input_names):
    """Back-propagate one random upstream gradient through both; compare outputs, every
    parameter's gradient (listing each name that differs), and the inputs' gradients. Returns
    the largest relative differences, printed for ``pytest -s``."""
    np.testing.assert_allclose(our_out.numpy(), torch_out.detach().numpy(), rtol=RTOL, atol=ATOL,
                               err_msg="forward outputs differ")
    upstream = rng.standard_normal(our_out.shape)
    our_out.backward(mt.tensor(upstream))
    torch_out.backward(torch.from_numpy(upstream))

    pairs = []
    our_parameters = dict(ours.named_parameters())
    for name, parameter, rows, transpose in links:
        theirs_grad = parameter.grad[rows].numpy()
        pairs.append((name, our_parameters[name].grad, theirs_grad.T if transpose else theirs_grad))
    pairs += [(f"input {name}", ours_input.grad, torch_input.grad.numpy())
              for name, ours_input, torch_input in zip(input_names, our_inputs, torch_inputs)]
    differing = []
    for name, ours_grad, theirs_grad in pairs:
        assert ours_grad is not None, f"{name}: no gradient on our side"
        if not np.allclose(ours_grad, theirs_grad, rtol=RTOL, atol=ATOL):
            differing.append(f"{name} (max relative difference "
                             f"{_relative_difference(ours_grad, theirs_grad):.2e})")
    assert not differing, "gradients differ from PyTorch's: " + "; ".join(differing)

    output_difference = _relative_difference(our_out.numpy(), torch_out.detach().numpy())
    gradient_difference = max(_relative_difference(a, b) for _, a, b in pairs)
    print(f"max relative difference: output {output_difference:.1e}, "
          f"gradients {gradient_difference:.1e}")
    return output_difference, gradient_difference


# --------------------------------------------------------------------------- multi-head attention

MHA_CASES = ["no_mask", "padding", "causal", "cross", "cross_padding"]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", MHA_CASES)
def test_multi_head_attention_matches_torch(case, bias):
    rng = np.random.default_rng(1)
    batch, length, d_model, n_heads = 2, 4, 12, 4
    source_length = 5 if case.startswith("cross") else length
    ours = MultiHeadAttention(d_model, n_heads, dropout=0.0, bias=bias)
    theirs = torch.nn.MultiheadAttention(d_model, n_heads, dropout=0.0, bias=bias,
                                         batch_first=True).double().eval()
    links = copy_weights(ours, theirs)

    if case.startswith("cross"):
        (query, memory), (torch_query, torch_memory) = _inputs(
            rng, (batch, length, d_model), (batch, source_length, d_model))
        our_args, torch_args = (query, memory, memory), (torch_query, torch_memory, torch_memory)
        our_inputs, torch_inputs = [query, memory], [torch_query, torch_memory]
        names = ["query", "memory"]
    else:  # self-attention: one tensor is query, key and value
        (x,), (torch_x,) = _inputs(rng, (batch, length, d_model))
        our_args, torch_args = (x, x, x), (torch_x, torch_x, torch_x)
        our_inputs, torch_inputs, names = [x], [torch_x], ["x"]

    mask, key_padding_mask, attn_mask = None, None, None
    if case.endswith("padding"):
        ids = _ids(rng, batch, source_length, pad_counts=[0, 2])
        mask = padding_mask(ids, PAD)  # (B, 1, 1, S), True at real tokens
        key_padding_mask = torch.from_numpy(ids == PAD)  # (B, S), True at padding
    elif case == "causal":
        mask = causal_mask(length)  # (T, T), True on and below the diagonal
        attn_mask = torch.ones(length, length, dtype=torch.bool).triu(1)  # True above it

    our_out = ours(*our_args, mask)
    torch_out, torch_weights = theirs(*torch_args, key_padding_mask=key_padding_mask,
                                      attn_mask=attn_mask, need_weights=True,
                                      average_attn_weights=False)
    np.testing.assert_allclose(ours.attention_weights.numpy(), torch_weights.detach().numpy(),
                               rtol=RTOL, atol=ATOL, err_msg="attention weights differ")
    _backward_and_compare(rng, ours, theirs, links, our_out, torch_out, our_inputs, torch_inputs,
                          names)


def test_feed_forward_matches_torch_linear_layers():
    rng = np.random.default_rng(2)
    ours = FeedForward(8, 16, activation="relu")
    # torch has no feed-forward module: its Transformer layers hold linear1 and linear2 directly
    theirs = torch.nn.ModuleDict({"linear1": torch.nn.Linear(8, 16),
                                  "linear2": torch.nn.Linear(16, 8)}).double()
    links = copy_weights(ours, theirs)
    (x,), (torch_x,) = _inputs(rng, (2, 3, 8))
    torch_out = theirs.linear2(torch.relu(theirs.linear1(torch_x)))
    _backward_and_compare(rng, ours, theirs, links, ours(x), torch_out, [x], [torch_x], ["x"])


# --------------------------------------------------------------------------- layers


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
def test_encoder_layer_with_padding_matches_torch(norm_first):
    rng = np.random.default_rng(3)
    batch, length, d_model, n_heads, d_ff = 2, 5, 8, 2, 16
    ours = EncoderLayer(d_model, n_heads, d_ff, dropout=0.0, activation="relu",
                        norm_first=norm_first)
    theirs = torch.nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0,
                                              activation="relu", layer_norm_eps=1e-5,
                                              batch_first=True,
                                              norm_first=norm_first).double().eval()
    links = copy_weights(ours, theirs)
    (x,), (torch_x,) = _inputs(rng, (batch, length, d_model))
    ids = _ids(rng, batch, length, pad_counts=[1, 3])

    our_out = ours(x, padding_mask(ids, PAD))
    torch_out = theirs(torch_x, src_key_padding_mask=torch.from_numpy(ids == PAD))
    _backward_and_compare(rng, ours, theirs, links, our_out, torch_out, [x], [torch_x], ["x"])


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
def test_decoder_layer_with_causal_and_memory_padding_matches_torch(norm_first):
    rng = np.random.default_rng(4)
    batch, length, source_length, d_model, n_heads, d_ff = 2, 4, 5, 8, 2, 16
    ours = DecoderLayer(d_model, n_heads, d_ff, dropout=0.0, activation="relu",
                        norm_first=norm_first)
    theirs = torch.nn.TransformerDecoderLayer(d_model, n_heads, d_ff, dropout=0.0,
                                              activation="relu", layer_norm_eps=1e-5,
                                              batch_first=True,
                                              norm_first=norm_first).double().eval()
    links = copy_weights(ours, theirs)
    (x, memory), (torch_x, torch_memory) = _inputs(
        rng, (batch, length, d_model), (batch, source_length, d_model))
    source_ids = _ids(rng, batch, source_length, pad_counts=[0, 2])

    our_out = ours(x, memory, tgt_mask=causal_mask(length),
                   memory_mask=padding_mask(source_ids, PAD))
    torch_out = theirs(torch_x, torch_memory,
                       tgt_mask=torch.ones(length, length, dtype=torch.bool).triu(1),
                       memory_key_padding_mask=torch.from_numpy(source_ids == PAD))
    _backward_and_compare(rng, ours, theirs, links, our_out, torch_out, [x, memory],
                          [torch_x, torch_memory], ["x", "memory"])


# --------------------------------------------------------------------------- whole stacks


# torch warns at construction that pre-LN encoders cannot use nested tensors (a fast path we
# avoid anyway).
@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
def test_encoder_decoder_stacks_match_torch_transformer(norm_first):
    rng = np.random.default_rng(5)
    batch, source_length, length, d_model, n_heads, d_ff, n_layers = 2, 5, 4, 8, 2, 16, 2
    stack = {"d_model": d_model, "n_heads": n_heads, "d_ff": d_ff, "dropout": 0.0,
             "activation": "relu", "norm_first": norm_first, "final_norm": True}
    ours = EncoderDecoder(Encoder(n_layers, **stack), Decoder(n_layers, **stack))
    theirs = torch.nn.Transformer(d_model, n_heads, n_layers, n_layers, d_ff, dropout=0.0,
                                  activation="relu", layer_norm_eps=1e-5, batch_first=True,
                                  norm_first=norm_first).double().eval()
    links = copy_weights(ours, theirs)
    (src, tgt), (torch_src, torch_tgt) = _inputs(
        rng, (batch, source_length, d_model), (batch, length, d_model))
    source_ids = _ids(rng, batch, source_length, pad_counts=[2, 0])
    source_mask = padding_mask(source_ids, PAD)

    our_out = ours(src, tgt, src_mask=source_mask, tgt_mask=causal_mask(length),
                   memory_mask=source_mask)
    source_padding = torch.from_numpy(source_ids == PAD)
    torch_out = theirs(torch_src, torch_tgt, src_mask=None,
                       tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(
                           length, dtype=torch.float64),  # 0 on and below the diagonal, -inf above
                       memory_mask=None, src_key_padding_mask=source_padding,
                       tgt_key_padding_mask=None, memory_key_padding_mask=source_padding)
    _backward_and_compare(rng, ours, theirs, links, our_out, torch_out, [src, tgt],
                          [torch_src, torch_tgt], ["src", "tgt"])


# --------------------------------------------------------------------------- the premise


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage")
def test_torch_fast_path_is_not_taken():
    """With a padded batch, torch's fast path (nested tensors) would zero the outputs at padded
    positions; the composite path, which the parity tests rely on, leaves them non-zero."""
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    encoder = torch.nn.TransformerEncoder(layer, 1).double().eval()
    x = torch.from_numpy(np.random.default_rng(6).standard_normal((2, 5, 8)))
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    assert encoder(x, src_key_padding_mask=padding)[1, 3:].abs().sum() > 0
    with torch.no_grad():  # the fast path's condition: nothing records a gradient
        fast = encoder(x, src_key_padding_mask=padding)
    assert fast[1, 3:].abs().sum() == 0, "torch's fast path no longer zeroes padded outputs"
