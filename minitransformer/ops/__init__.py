"""The primitive ops: one Function class each, followed by its functional wrapper.

Read them in this order: broadcast (how shapes and dtypes meet), elementwise, unary, reduction,
shape, matmul, then the fused ops a Transformer needs: softmax, cross_entropy, layer_norm,
embedding, dropout.

Import ops from their modules (``from minitransformer.ops.softmax import softmax``) or from the
package top (``mt.softmax``). This package re-exports nothing: a module and the function it is
named after (``ops.softmax.softmax``) would otherwise shadow each other.
"""
