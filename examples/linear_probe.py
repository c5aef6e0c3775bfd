"""A linear probe: how much sentiment do a pretrained encoder's features carry, before any
fine-tuning?

For each start (a random encoder, then each pretraining checkpoint given), the encoder reads the
same labelled training reviews and test reviews that ``minitransformer compare`` uses (seeded
subsets); the mean over the tokens of its last hidden states, and the mean of its input
embeddings, feed a logistic regression (scikit-learn, regularisation chosen by
cross-validation on the training features). The test accuracy of that regression says how
linearly readable sentiment is in the features: a pretrained encoder that learned something
useful should beat the random one by a clear margin.

    python examples/linear_probe.py --data ../shared/data/aclImdb_v1.tar.gz \\
        --checkpoint mlm=runs/imdb/mlm/last.npz --checkpoint clm=runs/imdb/clm/last.npz

The random encoder takes the sizes and the tokenizer of the first checkpoint. Needs
scikit-learn (``pip install ".[baseline]"``).
"""

import argparse
import time
import warnings
from dataclasses import replace

import numpy as np

from minitransformer import backend
from minitransformer.autograd import no_grad
from minitransformer.data import CLS_ID, PAD_ID, collate_classification, load_imdb
from minitransformer.tasks.common import read_pretrained
from minitransformer.tasks.finetune import (
    FinetuneConfig,
    build_classifier,
    load_classification_data,
)


def features(model, tokenizer, examples, seq_len, batch_size=64):
    """(hidden, embedded): per example, the mean over its tokens of the encoder's last hidden
    states (B, d_model) and of its scaled input embeddings (B, d_model)."""
    encoder, causal = model.encoder, model.causal
    hidden, embedded = [], []
    with no_grad():
        for start in range(0, len(examples), batch_size):
            chunk = [(tokenizer.encode(text)[:seq_len - (not causal)], label)
                     for text, label in examples[start:start + batch_size]]
            batch = collate_classification(chunk, max_len=seq_len,
                                           cls_id=None if causal else CLS_ID)
            keep = (backend.to_numpy(batch.ids.data) != PAD_ID)[..., None]  # (B, T, 1)
            states = backend.to_numpy(encoder(batch.ids, batch.mask, causal=causal).data)
            inputs = backend.to_numpy(encoder.embed(batch.ids).data) * encoder.embed_scale
            hidden.append((states * keep).sum(1) / keep.sum(1))
            embedded.append((inputs * keep).sum(1) / keep.sum(1))
    return np.concatenate(hidden), np.concatenate(embedded)


def probe(train_x, train_y, test_x, test_y):
    """Test accuracy of a logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegressionCV

    mean, std = train_x.mean(0), train_x.std(0) + 1e-8
    with warnings.catch_warnings():  # scikit-learn's notices of future defaults
        warnings.simplefilter("ignore", FutureWarning)
        model = LogisticRegressionCV(Cs=8, max_iter=3000).fit((train_x - mean) / std, train_y)
    return float((model.predict((test_x - mean) / std) == test_y).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb folder or aclImdb_v1.tar.gz")
    parser.add_argument("--checkpoint", action="append", required=True, metavar="NAME=PATH",
                        help="a pretraining checkpoint (repeatable)")
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    starts = [tuple(item.split("=", 1)) for item in args.checkpoint]
    if any(len(start) != 2 for start in starts):
        parser.error("--checkpoint takes NAME=PATH")

    clock = time.perf_counter()
    reviews = (list(zip(*load_imdb(args.data, "train"))), list(zip(*load_imdb(args.data, "test"))))
    _, tokenizer, sizes = read_pretrained(starts[0][1], "linear_probe")
    base = FinetuneConfig(data=args.data, n_train=args.n_train, n_test=args.n_test,
                          seq_len=args.seq_len, seed=args.seed, pooling="mean",
                          **{**sizes, "dropout": 0.0})
    train, _, test, _ = load_classification_data(base, reviews)
    train_y = np.array([label for _, label in train])
    test_y = np.array([label for _, label in test])
    print(f"{len(train)} training and {len(test)} test reviews, seed {args.seed} "
          f"({time.perf_counter() - clock:.0f} s to read)")
    print(f"{'start':<10} {'hidden mean':>12} {'embedding mean':>15} {'seconds':>8}")
    for name, path in [("random", None)] + starts:
        clock = time.perf_counter()
        backend.manual_seed(args.seed)
        config = replace(base, init_from=path)
        model, _, _, _ = build_classifier(config, tokenizer, log=lambda *_: None)
        model.eval()
        train_h, train_e = features(model, tokenizer, train, args.seq_len)
        test_h, test_e = features(model, tokenizer, test, args.seq_len)
        print(f"{name:<10} {probe(train_h, train_y, test_h, test_y):>12.1%} "
              f"{probe(train_e, train_y, test_e, test_y):>15.1%} "
              f"{time.perf_counter() - clock:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
