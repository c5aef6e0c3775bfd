"""DataLoader: a dataset (anything with ``len`` and ``[i]``) -> batches, epoch after epoch.

    loader = DataLoader(examples, batch_size=32, collate_fn=collate_classification,
                        shuffle=True, seed=0, sort_key=lambda ex: len(ex[0]))
    for epoch in range(3):
        for batch in loader:           # a new, reproducible order each epoch
            ...

Order of work for one epoch:
1. indices 0..N-1, shuffled when ``shuffle`` (a ``random.Random`` seeded by (seed, epoch), so a
   seed gives the same order every run, and each epoch a different one);
2. length bucketing, when ``sort_key`` is given: the indices are cut into chunks of
   ``bucket_size`` batches, each chunk sorted by ``sort_key(example)``, so a batch holds examples
   of similar length (less padding) while the chunks keep the order random;
3. cut into batches of ``batch_size``; the last, shorter batch is dropped with ``drop_last``;
4. with bucketing and shuffling, the batches are shuffled (else the short ones come first);
5. each batch goes through ``collate_fn`` (default: the list of examples itself).
"""

import random

__all__ = ["DataLoader", "batch_indices"]


def batch_indices(n, batch_size, shuffle=False, seed=0, epoch=0, drop_last=False, lengths=None,
                  bucket_size=100):
    """The batches of one epoch, as lists of indices into a dataset of ``n`` examples.

    lengths: the example lengths, for bucketing (None: no bucketing).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_indices: batch_size must be an int >= 1, got {batch_size!r}")
    if lengths is not None and len(lengths) != n:
        raise ValueError(f"batch_indices: {len(lengths)} lengths for {n} examples")
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(n))
    if shuffle:
        rng.shuffle(order)
    if lengths is not None:
        chunk = batch_size * bucket_size
        order = [i for start in range(0, n, chunk)
                 for i in sorted(order[start:start + chunk], key=lambda i: lengths[i])]
    batches = [order[start:start + batch_size] for start in range(0, n, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    if lengths is not None and shuffle:
        rng.shuffle(batches)
    return batches


class DataLoader:
    """Batches from ``dataset``; see the module docstring for shuffling, bucketing, drop_last.

    ``len(loader)`` is the number of batches per epoch. Each ``iter(loader)`` starts a new epoch
    (``set_epoch`` chooses one, e.g. to resume).
    """

    def __init__(self, dataset, batch_size, collate_fn=None, shuffle=False, seed=0,
                 drop_last=False, sort_key=None, bucket_size=100):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: the dataset must support len() and [i], got "
                            f"{type(dataset).__name__}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an int >= 1, got {batch_size!r}")
        self.dataset, self.batch_size, self.collate_fn = dataset, batch_size, collate_fn
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.sort_key, self.bucket_size = sort_key, bucket_size
        self.epoch = 0
        self._lengths = None if sort_key is None else [sort_key(example) for example in dataset]

    def set_epoch(self, epoch):
        """Make the next iteration epoch ``epoch`` (its shuffled order)."""
        self.epoch = epoch

    def __len__(self):
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        batches = batch_indices(len(self.dataset), self.batch_size, self.shuffle, self.seed,
                                self.epoch, self.drop_last, self._lengths, self.bucket_size)
        self.epoch += 1
        return (self._collate(indices) for indices in batches)

    def _collate(self, indices):
        examples = [self.dataset[i] for i in indices]
        return examples if self.collate_fn is None else self.collate_fn(examples)
