"""The benchmark model sizes (an encoder LM: post-LN, ReLU, causal mask, dropout 0, Adam,
float32), shared by the CPU and GPU benchmarks.

Matmul work per training step (forward + backward): tiny 0.35, small 6.8, medium 115 GFLOP.
"""

CONFIGS = {
    "tiny": dict(vocab=100, d_model=64, n_heads=4, n_layers=2, d_ff=256, seq_len=32, batch=16),
    "small": dict(vocab=1000, d_model=128, n_heads=4, n_layers=2, d_ff=512, seq_len=64, batch=32),
    "medium": dict(vocab=5000, d_model=256, n_heads=8, n_layers=4, d_ff=1024, seq_len=128,
                   batch=32),
}


def build_model(config):
    """Our model for a config: a causal Transformer LM with post-LN layers and ReLU."""
    from minitransformer import nn

    return nn.CausalLanguageModel(
        config["vocab"], d_model=config["d_model"], n_heads=config["n_heads"],
        n_layers=config["n_layers"], d_ff=config["d_ff"], dropout=0.0,
        max_len=config["seq_len"], positional="learned", norm_first=False, activation="relu",
        pad_id=None, tie_weights=False,
    )


def matmul_flops(config):
    """Multiply-adds of the matmuls in one forward + backward step, times 2 (FLOP)."""
    b, t, d, f, v, n = (config[k] for k in ("batch", "seq_len", "d_model", "d_ff", "vocab",
                                             "n_layers"))
    per_layer = 4 * t * d * d + 2 * t * t * d + 2 * t * d * f  # projections, QKᵀ and AV, FFN
    forward = b * (n * per_layer + t * d * v) * 2
    return 3 * forward  # backward costs about twice the forward
