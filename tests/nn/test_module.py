"""Module: registration, names, modes, state_dict, devices and dtypes, printing."""

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn


class Affine(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(mt.ones(dim))
        self.bias = nn.Parameter(mt.zeros(dim))

    def forward(self, x):
        return x * self.weight + self.bias


class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = Affine(3)
        self.blocks = nn.ModuleList([Affine(3), Affine(3)])
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        x = self.first(x)
        for block in self.blocks:
            x = block(x)
        return self.dropout(x)


def test_parameters_are_named_by_attribute_path():
    names = [name for name, _ in Stack().named_parameters()]
    assert names == ["first.weight", "first.bias", "blocks.0.weight", "blocks.0.bias",
                     "blocks.1.weight", "blocks.1.bias"]


def test_transformer_parameter_names_follow_the_design():
    model = nn.Transformer(10, 10, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                           d_ff=16)
    names = dict(model.named_parameters())
    assert "encoder.layers.0.self_attn.w_q.weight" in names
    assert "decoder.layers.0.cross_attn.w_o.bias" in names
    assert "decoder.layers.0.norm3.weight" in names and "output.weight" in names
    assert names["encoder.layers.0.self_attn.w_q.weight"].shape == (8, 8)


def test_shared_parameters_are_listed_and_counted_once():
    model = nn.Transformer(10, 10, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                           d_ff=16, share_embeddings=True, tie_output=True)
    parameters = list(model.parameters())
    assert len(parameters) == len({id(p) for p in parameters})
    assert model.src_embed.weight is model.tgt_embed.weight
    state = model.state_dict()
    assert "src_embed.weight" in state and "tgt_embed.weight" not in state  # saved once


def test_num_parameters_counts_numbers():
    assert Affine(5).num_parameters() == 10
    layer = nn.Linear(4, 3)
    layer.bias.requires_grad = False
    assert layer.num_parameters() == 15 and layer.num_parameters(trainable_only=True) == 12


def test_train_and_eval_switch_dropout_everywhere():
    model = Stack()
    x = mt.ones(1000, 3)
    model.eval()
    assert not any(m.training for m in model.modules())
    np.testing.assert_array_equal(model(x).numpy(), x.numpy())
    model.train()
    assert all(m.training for m in model.modules())
    assert (model(x).numpy() == 0).mean() == pytest.approx(0.5, abs=0.05)


def test_zero_grad_clears_every_gradient():
    model = Stack().eval()
    model(mt.ones(2, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_round_trip():
    source, target = Stack(), Stack()
    for p in source.parameters():
        p.data[...] = np.random.default_rng(0).standard_normal(p.shape)
    target.load_state_dict(source.state_dict())
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_state_dict_holds_numpy_copies():
    model = Affine(2)
    state = model.state_dict()
    state["weight"][0] = 7.0
    assert model.weight.data[0] == 1.0 and isinstance(state["weight"], np.ndarray)


def test_strict_load_lists_every_problem_and_loads_nothing():
    model = Affine(3)
    state = {"weight": np.full(4, 2.0, np.float32), "extra": np.zeros(1)}
    with pytest.raises(nn.StateDictError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing: bias" in message and "unexpected: extra" in message
    assert "wrong shape: weight: expected (3,), got (4,)" in message
    np.testing.assert_array_equal(model.weight.numpy(), [1.0, 1.0, 1.0])


def test_strict_load_refuses_a_wrong_dtype():
    model = Affine(2)
    with pytest.raises(nn.StateDictError, match="wrong dtype: weight: expected float32, got"):
        model.load_state_dict({"weight": np.ones(2), "bias": np.zeros(2, np.float32)})


def test_non_strict_load_takes_what_fits_and_reports_the_rest():
    model = Affine(2)
    report = model.load_state_dict({"weight": np.full(2, 3.0, np.float32)}, strict=False)
    assert report["missing"] == ["bias"]
    np.testing.assert_array_equal(model.weight.numpy(), [3.0, 3.0])


def test_to_dtype_converts_parameters_and_buffers():
    model = nn.Sequential(nn.Linear(2, 3), nn.SinusoidalPositionalEncoding(3, 5))
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].table.dtype == np.float64
    model.to("float32")
    assert model[0].weight.dtype == np.float32
    with pytest.raises(mt.DTypeError, match="floating dtype"):
        model.to("int32")


def test_to_a_backend_keeps_parameters_on_the_cpu_here():
    model = nn.Linear(2, 3)
    weight = model.weight
    assert model.to("numpy") is model and model.weight is weight
    assert weight.device == "cpu"


def test_repr_is_a_readable_tree():
    text = repr(nn.MultiHeadAttention(8, 2))
    assert text.startswith("MultiHeadAttention(\n  d_model=8, n_heads=2")
    assert "(w_q): Linear(8, 8, bias=True)" in text and "(w_o): Linear(8, 8, bias=True)" in text


def test_forgetting_super_init_gives_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(mt.ones(2))

    with pytest.raises(AttributeError, match="call super\\(\\).__init__\\(\\)"):
        Broken()


def test_parameters_must_be_floating():
    with pytest.raises(mt.DTypeError, match="Parameter: needs floating data"):
        nn.Parameter(mt.tensor([1, 2]))


def test_sequential_applies_in_order():
    model = nn.Sequential(Affine(2), nn.Linear(2, 1))
    assert len(model) == 2 and isinstance(model[1], nn.Linear)
    assert model(mt.ones(4, 2)).shape == (4, 1)


def test_init_functions_draw_from_the_seeded_generator():
    weight = nn.Parameter(mt.zeros(200, 300))
    mt.manual_seed(1)
    nn.init.xavier_uniform(weight)
    bound = (6 / 500) ** 0.5
    assert np.abs(weight.numpy()).max() <= bound and weight.numpy().std() > bound / 2
    first = weight.numpy()
    mt.manual_seed(1)
    np.testing.assert_array_equal(nn.init.xavier_uniform(weight).numpy(), first)
    assert nn.init.xavier_normal(weight).numpy().std() == pytest.approx((2 / 500) ** 0.5, rel=0.05)
    assert nn.init.normal(weight, 1.0, 0.5).numpy().mean() == pytest.approx(1.0, abs=0.01)
    assert (nn.init.ones(weight).numpy() == 1).all() and (nn.init.zeros(weight).numpy() == 0).all()
    with pytest.raises(mt.ShapeError, match="at least 2 dims"):
        nn.init.xavier_uniform(nn.Parameter(mt.zeros(3)))
