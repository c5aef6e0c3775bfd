# %% setup
# Chapter 15's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
# The chapter's fine-tuning and pretraining runs take minutes, so the exercises measure the
# same effects on a small classifier trained for a few dozen steps, or on hand-made tables.
import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.data import PAD_ID, WordTokenizer


def world_and_tokenizer():
    """The chapter's text world (seed 0) and its word tokenizer (corpus + training sentences)."""
    world = mt.data.text_world(seed=0)
    return world, WordTokenizer.train(world.corpus + [text for text, _ in world.train])


def small_classifier(vocab_size, pooling="mean", n_layers=1, seed=0):
    """A small SequenceClassifier (d_model 32, no dropout), made after mt.manual_seed(seed)."""
    mt.manual_seed(seed)
    encoder = nn.TextEncoder(vocab_size, d_model=32, n_heads=2, n_layers=n_layers, d_ff=64,
                             dropout=0.0, max_len=16, pad_id=PAD_ID)
    return nn.SequenceClassifier(encoder, 2, pooling=pooling, dropout=0.0)


def training_batches(world, tokenizer, steps, batch_size=32):
    """``steps`` ClassificationBatches of world.train, in order, wrapping around."""
    examples = [(tokenizer.encode(text), label) for text, label in world.train]
    return [mt.data.collate_classification(
        [examples[(step * batch_size + i) % len(examples)] for i in range(batch_size)])
        for step in range(steps)]


# %% exercise ch15-cls-pooling (3 points)
# Instead of the chapter's 60-step runs, a small classifier shows what the exercise asks.
# world, tokenizer = world_and_tokenizer(); valid = mt.data.collate_classification of every
#   (tokenizer.encode(text), label) of world.valid; word_positions: (len(world.valid),) int
#   array, the position in valid.ids of each sentence's sentiment word (<cls> is position 0).
# fine_tune(pooling, steps) -> classifier: small_classifier(V, pooling) trained with
#   mt.optim.Adam(lr=3e-3) for one step per batch of training_batches(world, tokenizer, steps)
#   (cross-entropy of classifier(ids, mask) against labels).
# cls_attention(classifier, batch, word_positions) -> float: run the classifier on batch
#   (mt.no_grad()) and read the LAST encoder layer's self_attn.attention_weights (B, H, T, S):
#   the weight the <cls> query (position 0) gives to each row's sentiment word, averaged over
#   heads and rows.
# before, after: cls_attention on valid for fine_tune("cls", 0) and fine_tune("cls", 30).
# accuracy: {"cls": ..., "mean": ...}: the validation accuracy (a float) of fine_tune(pooling,
#   30) for the two poolings.
# gathers: True or False: did training teach <cls> to gather the sentiment word, its
#   attention to it more than doubled?
# BEGIN SOLUTION
world, tokenizer = world_and_tokenizer()
V = tokenizer.vocab_size
valid_examples = [(tokenizer.encode(text), label) for text, label in world.valid]
valid = mt.data.collate_classification(valid_examples)
sentiment_ids = {tokenizer.encode(word)[0] for group in (world.seen_words, world.unseen_words)
                 for words in group.values() for word in words}
word_positions = np.array([1 + next(i for i, t in enumerate(ids) if t in sentiment_ids)
                           for ids, _ in valid_examples])


def fine_tune(pooling, steps):
    classifier = small_classifier(V, pooling)
    optimizer = mt.optim.Adam(classifier.parameters(), lr=3e-3)
    for batch in training_batches(world, tokenizer, steps):
        loss = F.cross_entropy(classifier(batch.ids, batch.mask), batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return classifier


def cls_attention(classifier, batch, word_positions):
    with mt.no_grad():
        classifier(batch.ids, batch.mask)
    layer = classifier.encoder.encoder.layers[-1]
    weights = layer.self_attn.attention_weights.numpy().mean(axis=1)  # (B, T, S)
    return float(weights[np.arange(len(word_positions)), 0, word_positions].mean())


def validation_accuracy(classifier):
    with mt.no_grad():
        predictions = classifier(valid.ids, valid.mask).numpy().argmax(axis=-1)
    return float((predictions == valid.labels.numpy()).mean())


before = cls_attention(fine_tune("cls", 0), valid, word_positions)
after = cls_attention(fine_tune("cls", 30), valid, word_positions)
accuracy = {pooling: validation_accuracy(fine_tune(pooling, 30)) for pooling in ("cls", "mean")}
gathers = after > 2 * before
# END SOLUTION

# %% check ch15-cls-pooling
check_world, check_tokenizer = world_and_tokenizer()
examples = [(check_tokenizer.encode(text), label) for text, label in check_world.valid[:20]]
check_batch = mt.data.collate_classification(examples)
positions = np.arange(20) % 3 + 1
probe = small_classifier(check_tokenizer.vocab_size, "cls", n_layers=2, seed=1)
got = cls_attention(probe, check_batch, positions)
last = probe.encoder.encoder.layers[-1].self_attn.attention_weights.numpy()  # (B, H, T, S)
want = float(last[np.arange(20), :, 0, positions].mean())
assert abs(got - want) < 1e-6, (
    f"cls_attention gives {got:.4f} on a two-layer classifier: read the LAST layer's weights "
    "after running the classifier, row b, query 0 (<cls>), key word_positions[b], averaged "
    "over heads and rows")
assert 0.05 < before < 0.4, (
    f"before is {before:.3f}: an untrained <cls> spreads its attention about evenly over a "
    "sentence's tokens; measure fine_tune('cls', 0) on the validation batch")
assert gathers == (after > 2 * before), (
    f"gathers is {gathers!r}, but <cls> gave the sentiment word {before:.3f} of its attention "
    f"before training and {after:.3f} after")
assert after > 2 * before, (
    f"after 30 steps <cls> gives the sentiment word {after:.3f} of its attention (before: "
    f"{before:.3f}): train with Adam lr 3e-3 on training_batches(world, tokenizer, 30)")
assert sorted(accuracy) == ["cls", "mean"] and min(accuracy.values()) >= 0.95, (
    f"the validation accuracies are {accuracy}; after 30 steps both poolings should be above "
    "95% on this easy task: train fine_tune(pooling, 30) and compare argmax predictions with "
    "valid.labels")

# %% wrong ch15-cls-pooling
def cls_attention(classifier, batch, word_positions):  # noqa: F811  (query and key swapped)
    with mt.no_grad():
        classifier(batch.ids, batch.mask)
    weights = classifier.encoder.encoder.layers[-1].self_attn.attention_weights.numpy()
    return float(weights.mean(axis=1)[np.arange(len(word_positions)), word_positions, 0].mean())

# %% wrong ch15-cls-pooling
gathers = False  # "the <cls> vector only has its own meaning"

# %% exercise ch15-unfrozen-glove (2 points)
# A small classifier with trainable embeddings stands in for section 7's GloVe model.
# embedding_shifts(classifier, batches, lr) -> (V,) NumPy array: train `classifier` with
#   mt.optim.Adam(classifier.parameters(), lr=lr) (no weight decay), one step per batch of
#   `batches` (cross-entropy of classifier(ids, mask) against labels), and return for every
#   row of its embedding table (classifier.encoder.embed.weight) how far the row moved: the
#   L2 norm of after - before.
# world, tokenizer = world_and_tokenizer(); shifts = embedding_shifts(small_classifier(V),
#   training_batches(world, tokenizer, 10), lr=1e-2).
# seen_shift, unseen_shift: the largest shift among the 12 seen sentiment words
#   (world.seen_words) and among the 12 unseen ones (world.unseen_words).
# unseen_vectors_move: True or False: do the unseen words' vectors move during fine-tuning?
# BEGIN SOLUTION
def embedding_shifts(classifier, batches, lr):
    table = classifier.encoder.embed.weight
    before = table.numpy()  # a copy: the optimizer changes the table in place
    optimizer = mt.optim.Adam(classifier.parameters(), lr=lr)
    for batch in batches:
        loss = F.cross_entropy(classifier(batch.ids, batch.mask), batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return np.linalg.norm(table.numpy() - before, axis=1)


world, tokenizer = world_and_tokenizer()
shifts = embedding_shifts(small_classifier(tokenizer.vocab_size),
                          training_batches(world, tokenizer, 10), lr=1e-2)


def largest_shift(groups):
    return float(max(shifts[tokenizer.encode(w)[0]] for ws in groups.values() for w in ws))


seen_shift, unseen_shift = largest_shift(world.seen_words), largest_shift(world.unseen_words)
unseen_vectors_move = False  # no training sentence holds them: their rows get no gradient
# END SOLUTION

# %% check ch15-unfrozen-glove
check_world, check_tokenizer = world_and_tokenizer()
check_shifts = embedding_shifts(small_classifier(check_tokenizer.vocab_size, seed=1),
                                training_batches(check_world, check_tokenizer, 5), lr=1e-2)
assert np.shape(check_shifts) == (check_tokenizer.vocab_size,), (
    f"embedding_shifts returned shape {np.shape(check_shifts)}: one shift per row, "
    f"({check_tokenizer.vocab_size},)")
rows = {kind: [check_tokenizer.encode(w)[0] for ws in groups.values() for w in ws]
        for kind, groups in (("seen", check_world.seen_words),
                             ("unseen", check_world.unseen_words))}
moved = check_shifts[rows["seen"]].min()
assert moved > 1e-3, (
    f"a seen word's row moved by only {moved:.3g}: keep a copy of the table before training "
    "(weight.numpy() copies; weight.data is the table itself, which the optimizer changes in "
    "place), then compare")
still = check_shifts[rows["unseen"]].max()
assert still < 1e-12, (
    f"an unseen word's row moved by {still:.3g}, although it is in no training sentence: use "
    "mt.optim.Adam without weight decay (decay shrinks every row, used or not)")
assert seen_shift > 1e-3 and unseen_shift < 1e-12, (
    f"seen_shift is {seen_shift:.3g} and unseen_shift {unseen_shift:.3g}: take the largest "
    "shift over the rows of world.seen_words' and world.unseen_words' 12 words")
assert unseen_vectors_move is (unseen_shift > 0), (
    f"unseen_vectors_move is {unseen_vectors_move!r}, but the unseen words' rows moved by at "
    f"most {unseen_shift:.3g} (the seen words' by up to {seen_shift:.3g})")

# %% wrong ch15-unfrozen-glove
def embedding_shifts(classifier, batches, lr):  # noqa: F811  (no copy of the table kept)
    table = classifier.encoder.embed.weight
    before = table.data
    optimizer = mt.optim.Adam(classifier.parameters(), lr=lr)
    for batch in batches:
        loss = F.cross_entropy(classifier(batch.ids, batch.mask), batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return np.linalg.norm(table.numpy() - before, axis=1)

# %% wrong ch15-unfrozen-glove
def embedding_shifts(classifier, batches, lr):  # noqa: F811  (AdamW: weight decay 0.01)
    table = classifier.encoder.embed.weight
    before = table.numpy()
    optimizer = mt.optim.AdamW(classifier.parameters(), lr=lr)
    for batch in batches:
        loss = F.cross_entropy(classifier(batch.ids, batch.mask), batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return np.linalg.norm(table.numpy() - before, axis=1)

# %% exercise ch15-longer-pretraining (2 points)
# Pretraining for thousands of steps is too long for a check; this grades the measurement the
# exercise adds, on hand-made tables.
# same_polarity_count(table, tokenizer, seen_words, unseen_words) -> int: how many of the
#   unseen words (a dict {"positive": [...], "negative": [...]}, like world.unseen_words) have
#   as their nearest SEEN word (the same kind of dict) by cosine similarity of the rows of
#   `table` ((V, D) NumPy array; a word's row is tokenizer.encode(word)[0]) a word of their
#   own polarity.
# BEGIN SOLUTION
def same_polarity_count(table, tokenizer, seen_words, unseen_words):
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)

    def vector(word):
        return unit[tokenizer.encode(word)[0]]

    seen = [(word, polarity) for polarity, words in seen_words.items() for word in words]
    count = 0
    for polarity, words in unseen_words.items():
        for word in words:
            _, closest = max(seen, key=lambda item: vector(item[0]) @ vector(word))
            count += closest == polarity
    return count
# END SOLUTION

# %% check ch15-longer-pretraining
check_world = mt.data.text_world(seed=0)
seen, unseen = check_world.seen_words, check_world.unseen_words
words = [w for group in (seen, unseen) for ws in group.values() for w in ws]
check_tokenizer = WordTokenizer.train([" ".join(words)])
rng = np.random.default_rng(0)
table = rng.normal(size=(check_tokenizer.vocab_size, 16))
table[:, 0] = 0.0  # no row points along the first axis ...
for length, ws in zip((40.0, 39.0), seen.values()):  # ... but one very long seen word each
    table[check_tokenizer.encode(ws[0])[0]] = 0.0
    table[check_tokenizer.encode(ws[0])[0], 0] = length
other = {"positive": "negative", "negative": "positive"}
want = 0
for polarity, ws in unseen.items():  # each unseen word next to a chosen seen word
    for k, word in enumerate(ws):
        side = polarity if k % 3 else other[polarity]  # 8 of 12 beside their own polarity
        row = table[check_tokenizer.encode(seen[side][1 + k % 5])[0]] + 0.05 * rng.normal(
            size=16)
        row[0] = 1.0  # a little of the long words' direction
        table[check_tokenizer.encode(word)[0]] = row
        want += side == polarity
got = same_polarity_count(table, check_tokenizer, seen, unseen)
assert got == want, (
    f"same_polarity_count gives {got} on a table where {want} of the 12 unseen words lie, by "
    "direction, next to a seen word of their own polarity: compare unit vectors (cosine "
    "similarity), since a plain dot product favours the longest vectors, and search the seen "
    "words only")
flipped = same_polarity_count(table, check_tokenizer, seen, {p: unseen[other[p]] for p in seen})
assert flipped == 12 - want, (
    f"with the unseen words' polarities swapped the count should become {12 - want}, got "
    f"{flipped}: compare each unseen word's polarity (its key in unseen_words) with that of "
    "its nearest seen word")

# %% wrong ch15-longer-pretraining
def same_polarity_count(table, tokenizer, seen_words, unseen_words):  # noqa: F811  (dot product)
    seen = [(word, polarity) for polarity, words in seen_words.items() for word in words]
    count = 0
    for polarity, words in unseen_words.items():
        for word in words:
            row = table[tokenizer.encode(word)[0]]
            _, closest = max(seen, key=lambda item: table[tokenizer.encode(item[0])[0]] @ row)
            count += closest == polarity
    return count
