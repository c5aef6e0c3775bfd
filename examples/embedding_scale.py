"""Why a masked LM stayed at the unigram line, measured: the same masked-LM recipe with three
ways of adding token vectors and position codes (docs/results.md, "Why the masked LM learned
nothing").

    python examples/embedding_scale.py --data ../shared/data/aclImdb_v1.tar.gz
    python examples/embedding_scale.py            # the built-in corpus, in seconds

Each variant: the same tokenizer, blocks of 128 tokens, AdamW with warm-up and cosine decay, the
same seed; the validation loss is printed beside the unigram line (guessing by frequency).
"""

import argparse
import math

from minitransformer import backend
from minitransformer.data import MaskedLMCollator
from minitransformer.nn import init
from minitransformer.tasks.common import build_optimizer, build_tokenizer, mean_loss, schedule_for
from minitransformer.tasks.pretrain import (
    PretrainConfig,
    build_pretraining_model,
    load_texts,
    loss_function,
    make_examples,
    unigram_cross_entropy,
)
from minitransformer.train import TrainConfig, Trainer

VARIANTS = {  # name: (positional, embeddings N(0, 0.02²) and unscaled?)
    "learned, both N(0, 0.02²)": ("learned", False),
    "sinusoidal, embeddings N(0, 0.02²) (before)": ("sinusoidal", True),
    "sinusoidal, embeddings N(0, 1/d) × √d (now)": ("sinusoidal", False),
}


def run(config, tokenizer, train, valid, unscaled):
    backend.manual_seed(config.seed)
    model = build_pretraining_model("mlm", tokenizer.vocab_size, config)
    if unscaled:  # the encoder as it was: 0.02-vectors under unit-amplitude codes
        model.encoder.embed_scale = 1.0
        init.normal(model.encoder.embed.weight, std=0.02)
        model.encoder.embed.weight.data[0] = 0
    loss_fn = loss_function("mlm")
    valid_batches = [MaskedLMCollator(tokenizer.vocab_size, seed=123)(valid[i:i + 32])
                     for i in range(0, len(valid), 32)]

    def batches(epoch):
        collate = MaskedLMCollator(tokenizer.vocab_size, seed=epoch)
        order = backend.local_generator(epoch).permutation(len(train))
        return (collate([train[j] for j in order[i:i + 32]])
                for i in range(0, len(order) - 31, 32))

    losses = []
    evaluate = lambda m: {"loss": mean_loss(m, valid_batches, loss_fn)}  # noqa: E731
    trainer = Trainer(model, build_optimizer(model.named_parameters(), config), loss_fn, batches,
                      TrainConfig(steps=config.steps, eval_every=config.eval_every,
                                  grad_clip=1.0, progress=config.progress),
                      schedule=schedule_for(config), evaluate=evaluate)
    for row in trainer.fit():
        if "eval_loss" in row:
            losses.append(row["eval_loss"])
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="builtin", help="IMDB folder/tarball, or builtin")
    parser.add_argument("--reviews", type=int, default=5000, help="training reviews to use")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    builtin = args.data == "builtin"
    config = PretrainConfig(data=args.data, seq_len=24 if builtin else 128, d_model=128,
                            n_heads=4, n_layers=2, d_ff=512, dropout=0.1, max_len=256,
                            steps=args.steps, warmup=100, eval_every=max(1, args.steps // 3),
                            batch_size=32)
    texts = load_texts(config)[:args.reviews]
    tokenizer = build_tokenizer("word", texts, 10000, 3)
    examples = make_examples(config, tokenizer, texts)
    train, valid = examples[:-100], examples[-100:]
    unigram = unigram_cross_entropy(train, valid, tokenizer.vocab_size)
    print(f"{len(train)} training blocks; unigram line {unigram:.3f} nats "
          f"(ln V = {math.log(tokenizer.vocab_size):.3f})")
    results = {}
    for name, (positional, unscaled) in VARIANTS.items():
        variant = PretrainConfig(**{**vars(config), "positional": positional})
        results[name] = run(variant, tokenizer, train, valid, unscaled)
        print(f"{name:<46} validation loss " + " / ".join(f"{x:.3f}" for x in results[name]))
    return unigram, results


if __name__ == "__main__":
    main()
