"""Activation recomputation: the same gradients as keeping the activations, with less kept."""

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import backend, nn
from minitransformer.functional import causal_mask, padding_mask
from minitransformer.nn.recompute import Recompute, recompute

D, H, FF = 8, 2, 16
IDS = [[3, 4, 5, 6, 0], [7, 8, 9, 0, 0]]


def _pair(make):
    """The same module twice in float64, one with recompute: same weights, same dropout."""
    backend.manual_seed(0)
    plain = make(False).double()
    backend.manual_seed(0)
    recomputing = make(True).double()
    recomputing.load_state_dict(plain.state_dict())
    return plain, recomputing


def _grads(module, run, seed=1):
    """Output and every gradient (parameters and the inputs ``run`` returns) of one
    forward/backward from ``seed``; dropout is on (training mode)."""
    module.train()
    module.zero_grad()
    backend.manual_seed(seed)
    output, inputs = run(module)
    weights = mt.tensor(np.random.default_rng(2).standard_normal(output.shape))
    (output * weights).sum().backward()
    grads = {name: p.grad.copy() for name, p in module.named_parameters()}
    grads.update({f"input {i}": x.grad.copy() for i, x in enumerate(inputs)})
    return output.numpy(), grads


def _assert_same(plain, recomputing, run):
    out_a, grads_a = _grads(plain, run)
    out_b, grads_b = _grads(recomputing, run)
    np.testing.assert_array_equal(out_a, out_b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        np.testing.assert_allclose(grads_b[name], grads_a[name], rtol=1e-12, atol=1e-14,
                                   err_msg=name)


def _x(*shape, seed=0):
    return mt.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def _run_encoder(module):
    x = _x(2, 5, D)
    return module(x, padding_mask(mt.tensor(IDS), 0)), [x]


def _run_decoder(module):
    x, memory = _x(2, 4, D), _x(2, 5, D, seed=1)
    return module(x, memory, causal_mask(4), padding_mask(mt.tensor(IDS), 0)), [x, memory]


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_gradients_equal_the_plain_path_with_dropout_on(norm_first):
    plain, recomputing = _pair(lambda r: nn.Encoder(3, D, H, FF, 0.2, "gelu", norm_first,
                                                    final_norm=norm_first, recompute=r))
    _assert_same(plain, recomputing, _run_encoder)


def test_decoder_gradients_equal_the_plain_path_memory_included():
    plain, recomputing = _pair(lambda r: nn.Decoder(2, D, H, FF, 0.2, recompute=r))
    _assert_same(plain, recomputing, _run_decoder)


@pytest.mark.parametrize("kind", ["text_encoder", "causal_lm", "masked_lm", "encoder_decoder"])
def test_every_model_kind_takes_the_setting_and_matches(kind):
    settings = nn.ModelSettings(d_model=D, n_heads=H, n_layers=2, d_ff=FF, dropout=0.1,
                                max_len=8)

    def make(on):
        settings.recompute = on
        return nn.build_model(kind, 12, settings, **({"pad_id": 0} if kind != "causal_lm"
                                                      and kind != "encoder_decoder" else {}))

    plain, recomputing = _pair(make)
    ids = mt.tensor(IDS)

    def run(module):
        if kind == "encoder_decoder":
            return module(ids, ids[:, :4]), []
        return module(ids), []

    _assert_same(plain, recomputing, run)


def test_gradient_accumulation_adds_up_as_without_recompute():
    plain, recomputing = _pair(lambda r: nn.Encoder(2, D, H, FF, 0.1, recompute=r))
    results = []
    for module in (plain, recomputing):
        module.zero_grad()
        for seed in (1, 2):  # two micro-batches, gradients accumulated
            backend.manual_seed(seed)
            x = _x(2, 5, D, seed=seed)
            module(x).sum().backward()
        results.append({n: p.grad.copy() for n, p in module.named_parameters()})
    for name in results[0]:
        np.testing.assert_allclose(results[1][name], results[0][name], rtol=1e-12, err_msg=name)


def test_the_generator_continues_as_without_recompute():
    draws = []
    for on in (False, True):
        backend.manual_seed(0)
        encoder = nn.Encoder(2, D, H, FF, 0.3, recompute=on).double()
        backend.manual_seed(5)
        encoder(_x(2, 5, D)).sum().backward()
        draws.append(mt.rand(4).numpy())
    np.testing.assert_array_equal(draws[0], draws[1])


def test_generation_with_the_kv_cache_is_unchanged():
    outputs = []
    for on in (False, True):
        backend.manual_seed(0)
        model = nn.CausalLanguageModel(12, d_model=D, n_heads=H, n_layers=2, d_ff=FF,
                                       max_len=8, recompute=on).eval()
        cache = model.new_cache()
        steps = [model(mt.tensor([[t]]), cache=cache).numpy() for t in (3, 4, 5)]
        outputs.append(np.concatenate(steps, axis=1))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_frozen_parameters_get_no_gradient_and_the_rest_do():
    encoder = nn.Encoder(1, D, H, FF, 0.0, recompute=True).double()
    frozen = encoder.layers[0].self_attn.w_q.weight
    frozen.requires_grad = False
    encoder(_x(2, 5, D)).sum().backward()
    assert frozen.grad is None
    assert encoder.layers[0].ff.linear1.weight.grad is not None


def test_parameters_alone_requiring_grad_still_get_gradients():
    encoder = nn.Encoder(1, D, H, FF, 0.0, recompute=True).double()
    x = mt.tensor(np.ones((2, 5, D)))  # the input needs no gradient (frozen embeddings)
    encoder(x).sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_without_a_graph_it_is_the_plain_call():
    layer = nn.EncoderLayer(D, H, FF, 0.0)
    with mt.no_grad():
        out = recompute(layer, _x(2, 5, D))
    assert out.creator is None
    out = recompute(layer, _x(2, 5, D))
    assert out.creator.function is Recompute


def test_the_graph_keeps_about_one_input_per_layer_instead_of_every_activation():
    kept = {}
    for on in (False, True):
        backend.manual_seed(0)
        encoder = nn.Encoder(4, 32, 4, 128, 0.1, recompute=on)
        x = mt.randn(2, 16, 32, requires_grad=True)
        kept[on] = mt.autograd.saved_bytes(encoder(x))
    layer_input = 2 * 16 * 32 * 4  # one (B, T, d) float32 array
    assert kept[True] <= 4 * layer_input
    assert kept[False] > 10 * kept[True]


@pytest.mark.parametrize("command", [
    ["pretrain", "--set", "objective=mlm"],
    ["train-seq2seq", "--set", "data=copy"],
    ["pretrain", "--set", "objective=clm", "--set", "precision=float16"],  # the two together
])
def test_the_training_setting_trains_the_same_model(command, tmp_path, monkeypatch):
    from minitransformer import checkpoint
    from minitransformer.cli import main
    from minitransformer.train import read_history

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    tiny = ["--set", "d_model=16", "--set", "n_heads=2", "--set", "n_layers=2", "--set",
            "d_ff=32", "--set", "steps=6", "--set", "eval_every=3", "--no-progress"]
    for on in ("false", "true"):
        assert main([*command, *tiny, "--set", f"recompute={on}", "--out", on]) == 0
    losses = [[row["loss"] for row in read_history(f"{on}/metrics.jsonl") if "loss" in row]
              for on in ("false", "true")]
    assert losses[0] and np.allclose(losses[0], losses[1], rtol=1e-5)
    # float32 sums the gradients of a decoder's memory in another order with recompute, and
    # Adam's normalisation turns a rounding difference into at most a fraction of one step
    # (lr 1e-3): the weights agree to well within one step, not bit for bit
    weights = [checkpoint.load(f"{on}/last.npz")["model"] for on in ("false", "true")]
    for name in weights[0]:
        np.testing.assert_allclose(weights[1][name], weights[0][name], rtol=0, atol=5e-4,
                                   err_msg=name)
