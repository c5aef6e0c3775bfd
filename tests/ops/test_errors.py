"""Bad input gets a clear exception naming the function, the shapes or values, and the rule."""

import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.errors import DTypeError, ShapeError


def test_matmul_inner_dimension_mismatch():
    with pytest.raises(ShapeError, match=r"matmul: cannot multiply \(2, 3\) @ \(4, 5\): the last "
                                         r"axis of the first \(3\) must equal the second-to-last"):
        mt.randn(2, 3) @ mt.randn(4, 5)


def test_matmul_batch_axes_that_cannot_broadcast():
    with pytest.raises(ShapeError, match=r"matmul .*batch axes.*\(2,\) and \(3,\) cannot"):
        mt.randn(2, 4, 5) @ mt.randn(3, 5, 6)


def test_matmul_of_scalars():
    with pytest.raises(ShapeError, match="scalars are not matrices"):
        mt.matmul(mt.tensor(2.0), mt.randn(2, 2))


def test_broadcasting_mismatch_names_the_op_and_axis():
    with pytest.raises(ShapeError, match=r"add: shapes \(2, 3\) and \(4,\) cannot broadcast: "
                                         r"axis -1 has sizes \[3, 4\]"):
        mt.randn(2, 3) + mt.randn(4)
    with pytest.raises(ShapeError, match="mul: shapes"):
        mt.randn(2, 3) * mt.randn(3, 2)


def test_reshape_to_a_different_size():
    with pytest.raises(ShapeError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\) "
                                         r"\(6 elements\) into \(4, 2\)"):
        mt.randn(2, 3).reshape(4, 2)


def test_axis_out_of_range():
    with pytest.raises(ShapeError, match=r"sum: axis 2 is out of range for a tensor with 2 dims"):
        mt.randn(2, 3).sum(axis=2)
    with pytest.raises(ShapeError, match="softmax: axis -3"):
        F.softmax(mt.randn(2, 3), axis=-3)


def test_concat_shapes_that_do_not_fit():
    with pytest.raises(ShapeError, match=r"concat: shapes \(2, 3\), \(2, 4\) do not fit; it needs "
                                         r"equal shapes except axis 0"):
        mt.concat([mt.randn(2, 3), mt.randn(2, 4)], axis=0)


def test_stack_needs_equal_shapes():
    with pytest.raises(ShapeError, match=r"stack: shapes \(2,\), \(3,\)"):
        mt.stack([mt.randn(2), mt.randn(3)])


def test_split_into_unequal_parts():
    with pytest.raises(ShapeError, match=r"split: axis 0 of shape \(5,\) \(size 5\) cannot be "
                                         r"split into 2 equal parts"):
        mt.randn(5).split(2)


def test_squeeze_of_a_non_unit_axis():
    with pytest.raises(ShapeError, match=r"squeeze: axis 1 of shape \(2, 3\) has size 3"):
        mt.randn(2, 3).squeeze(1)


def test_out_of_range_embedding_ids():
    with pytest.raises(ValueError, match=r"embedding: ids must lie in \[0, 4\) for a table of 4 "
                                         r"rows; got values from 0 to 4"):
        F.embedding(mt.tensor([0, 4]), mt.randn(4, 3))
    with pytest.raises(ValueError, match="got values from -1 to 2"):
        F.embedding(mt.tensor([-1, 2]), mt.randn(4, 3))


def test_embedding_ids_must_be_integers():
    with pytest.raises(DTypeError, match="embedding: ids must be integers, got dtype float32"):
        F.embedding(mt.tensor([0.0, 1.0]), mt.randn(4, 3))


def test_cross_entropy_shape_and_target_errors():
    with pytest.raises(ShapeError, match=r"cross_entropy: logits \(4, 5\) and targets \(3,\)"):
        F.cross_entropy(mt.randn(4, 5), mt.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 5\) for 5 classes; got "
                                         r"values from 0 to 7"):
        F.cross_entropy(mt.randn(2, 5), mt.tensor([0, 7]))
    with pytest.raises(DTypeError, match="targets must be integer class ids"):
        F.cross_entropy(mt.randn(2, 5), mt.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="reduction 'avg' is not one of"):
        F.cross_entropy(mt.randn(2, 5), mt.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 1\)"):
        F.cross_entropy(mt.randn(2, 5), mt.tensor([0, 1]), label_smoothing=1.0)


def test_layer_norm_weight_shape():
    with pytest.raises(ShapeError, match=r"layer_norm: weight has shape \(3,\), but x \(2, 4\) "
                                         r"needs \(4,\)"):
        F.layer_norm(mt.randn(2, 4), mt.ones(3))


def test_where_and_masked_fill_need_bool_masks():
    with pytest.raises(DTypeError, match="masked_fill: mask must be a bool tensor"):
        mt.randn(2).masked_fill(mt.tensor([1, 0]), 0.0)
    with pytest.raises(DTypeError, match="where: condition must be a bool"):
        mt.where(mt.randn(2), mt.randn(2), mt.randn(2))


def test_dropout_probability():
    with pytest.raises(ValueError, match=r"dropout: p is a probability in \[0, 1\], got 1.5"):
        F.dropout(mt.randn(2), 1.5)


def test_getitem_out_of_bounds_names_the_shape():
    with pytest.raises(IndexError, match=r"getitem: .*out of bounds.*\(tensor of shape \(3,\)\)"):
        mt.randn(3)[5]


def test_permute_needs_a_permutation():
    with pytest.raises(ShapeError, match=r"permute: axes \(0, 0\) are not a permutation"):
        mt.randn(2, 3).permute(0, 0)


def test_pad_width_per_axis():
    with pytest.raises(ShapeError, match="pad: pad_width"):
        mt.randn(2, 3).pad(((1, 1), (1, 1), (1, 1)))


def test_var_correction_needs_enough_elements():
    with pytest.raises(ValueError, match="var: correction=1 needs more than 1 elements"):
        mt.randn(1).var(correction=1)


def test_scaled_masked_softmax_refuses_a_mask_of_the_wrong_kind_or_shape():
    from minitransformer.ops.softmax import scaled_masked_softmax

    scores = mt.randn(2, 3, 4)
    with pytest.raises(DTypeError, match="scaled_masked_softmax: the mask must be bool"):
        scaled_masked_softmax(scores, 0.5, mt.ones(3, 4))
    with pytest.raises(ShapeError, match=r"scaled_masked_softmax: mask \(3, 3\) does not "
                                         r"broadcast to x \(2, 3, 4\)"):
        scaled_masked_softmax(scores, 0.5, F.causal_mask(3))
    with pytest.raises(ShapeError, match="scaled_masked_softmax: mask"):  # would grow x
        scaled_masked_softmax(scores, 0.5, mt.ones(5, 2, 3, 4).data > 0)
