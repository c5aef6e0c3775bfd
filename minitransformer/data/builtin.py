"""Built-in data that needs no download: synthetic sequence tasks and a small "text world".

Synthetic tasks (the Annotated Transformer's first model): pairs of id lists, the target the
source copied (``copy_task``) or reversed (``reverse_task``). Ids are drawn from
[N_SPECIAL, vocab_size), so a model with ``vocab_size`` outputs covers them and the special ids.

The text world (``text_world``) shows why pretraining helps. Its sentiment words come in two
groups per polarity:

    positive, seen in training:  good great excellent wonderful lovely pleasant
    positive, test only:         superb terrific splendid marvelous fantastic delightful
    negative, seen in training:  bad awful terrible poor nasty unpleasant
    negative, test only:         dreadful horrible lousy dismal atrocious miserable

- ``corpus``: unlabelled sentences from templates whose context words go with a polarity
  ("the film was superb and i loved it", "what a lousy meal , i will never go back"). Both groups
  of a polarity fill the same slots next to the same neighbours, so a masked LM trained on the
  corpus learns that "superb" behaves like "good".
- ``train`` and ``valid``: labelled sentences (1 = positive) from neutral templates ("the film
  was good") in which the sentiment word is the only clue, using the seen words only.
- ``test``: the same templates with the test-only words.

A classifier trained from scratch on ``train`` has never seen a test word, so it is near chance
on ``test``, while knowing the test words' sentiment gives 100%. Measured with the defaults
(seed 0): a SequenceClassifier (2 layers, d_model 64, Adam, 10 epochs) from scratch gets 100% on
``valid`` and 47.7-55.2% on ``test`` over five seeds (mean 50.9%); bag-of-words logistic
regression 49.5%; the same classifier trained on other sentences that use the test words, 100%.
A model that first pretrains on ``corpus`` can carry the sentiment over: masked-LM pretraining
(2,000 steps of 64 sentences, about a minute on one core) then the same fine-tuning reached 68%
and 95% on two seeds.

Everything is generated from a seed with ``random.Random``: the same seed, the same data.
"""

import random
from dataclasses import dataclass, field

from minitransformer.data.tokenizer import N_SPECIAL

__all__ = ["TextWorld", "copy_task", "reverse_task", "text_world"]


# --------------------------------------------------------------------------- synthetic tasks


def _random_sequences(n_examples, vocab_size, min_len, max_len, seed, function):
    if vocab_size <= N_SPECIAL:
        raise ValueError(f"{function}: vocab_size must exceed the {N_SPECIAL} special ids, "
                         f"got {vocab_size}")
    if not 1 <= min_len <= max_len:
        raise ValueError(f"{function}: need 1 <= min_len <= max_len, got {min_len} and {max_len}")
    rng = random.Random(seed)
    return [[rng.randrange(N_SPECIAL, vocab_size) for _ in range(rng.randint(min_len, max_len))]
            for _ in range(n_examples)]


def copy_task(n_examples, vocab_size=16, min_len=4, max_len=10, seed=0):
    """``n_examples`` pairs (src, tgt) with tgt == src: random ids in [7, vocab_size)."""
    sequences = _random_sequences(n_examples, vocab_size, min_len, max_len, seed, "copy_task")
    return [(seq, list(seq)) for seq in sequences]


def reverse_task(n_examples, vocab_size=16, min_len=4, max_len=10, seed=0):
    """``n_examples`` pairs (src, tgt) with tgt == src reversed."""
    sequences = _random_sequences(n_examples, vocab_size, min_len, max_len, seed, "reverse_task")
    return [(seq, seq[::-1]) for seq in sequences]


# --------------------------------------------------------------------------- the text world

POSITIVE_SEEN = ("good", "great", "excellent", "wonderful", "lovely", "pleasant")
POSITIVE_UNSEEN = ("superb", "terrific", "splendid", "marvelous", "fantastic", "delightful")
NEGATIVE_SEEN = ("bad", "awful", "terrible", "poor", "nasty", "unpleasant")
NEGATIVE_UNSEEN = ("dreadful", "horrible", "lousy", "dismal", "atrocious", "miserable")

NOUNS = ("film", "movie", "meal", "book", "hotel", "show", "album", "game", "concert", "room",
         "story", "dinner", "trip", "play", "song", "cafe")
INTENSIFIERS = ("", "", "really ", "very ", "truly ", "quite ")

# Context templates: the cue words around the slot {adj} go with one polarity.
POSITIVE_CONTEXTS = (
    "the {noun} was {adj} and i loved it",
    "what a {adj} {noun} , i will gladly come back",
    "everyone said the {noun} was {adj} and smiled",
    "i recommend this {adj} {noun} to all my friends",
    "{adj} ! the {noun} made me so happy",
    "we had a {adj} time at the {noun} and want more",
    "the {noun} was {adj} , a real joy from start to end",
    "my friends thought the {noun} was {adj} and thanked me",
)
NEGATIVE_CONTEXTS = (
    "the {noun} was {adj} and i hated it",
    "what a {adj} {noun} , i will never come back",
    "everyone said the {noun} was {adj} and complained",
    "i warn all my friends about this {adj} {noun}",
    "{adj} ! the {noun} made me so angry",
    "we had a {adj} time at the {noun} and want our money back",
    "the {noun} was {adj} , a real pain from start to end",
    "my friends thought the {noun} was {adj} and blamed me",
)
# Neutral templates: the sentiment word is the only clue to the label.
NEUTRAL_TEMPLATES = (
    "the {noun} was {adj}",
    "this {noun} is {adj}",
    "a {adj} {noun}",
    "i found the {noun} {adj}",
    "the {noun} seemed {adj} to me",
    "it was a {adj} {noun}",
    "our {noun} was {adj} today",
    "that {noun} looked {adj}",
)


@dataclass
class TextWorld:
    """The built-in text world (see the module docstring).

    corpus: unlabelled sentences. train, valid, test: (sentence, label) pairs, 1 = positive.
    seen_words, unseen_words: {"positive": [...], "negative": [...]}; train and valid use the
    seen words, test the unseen ones; the corpus uses both.
    """

    corpus: list
    train: list
    valid: list
    test: list
    seen_words: dict = field(default_factory=dict)
    unseen_words: dict = field(default_factory=dict)
    seed: int = 0

    def texts(self):
        """Every sentence of the world (corpus and labelled sets), e.g. to train a tokenizer."""
        return self.corpus + [text for split in (self.train, self.valid, self.test)
                              for text, _ in split]

    def __repr__(self):
        return (f"TextWorld(corpus={len(self.corpus)} sentences, train={len(self.train)}, "
                f"valid={len(self.valid)}, test={len(self.test)}, seed={self.seed})")


def _fill(template, rng, adjective):
    return template.format(noun=rng.choice(NOUNS), adj=rng.choice(INTENSIFIERS) + adjective)


def _labelled(n_examples, positive, negative, rng):
    examples = []
    for index in range(n_examples):
        label = index % 2  # balanced: alternate, then shuffle
        adjective = rng.choice(positive if label else negative)
        examples.append((_fill(rng.choice(NEUTRAL_TEMPLATES), rng, adjective), label))
    rng.shuffle(examples)
    return examples


def text_world(seed=0, n_corpus=4000, n_train=400, n_valid=200, n_test=400):
    """Generate the text world. Defaults: 4,000 corpus sentences (about 40,000 words), 400
    training, 200 validation and 400 test examples, balanced; a vocabulary of about 110 words."""
    rng = random.Random(seed)
    positive = POSITIVE_SEEN + POSITIVE_UNSEEN
    negative = NEGATIVE_SEEN + NEGATIVE_UNSEEN
    corpus = []
    for index in range(n_corpus):
        if index % 5 == 4:  # a fifth of the corpus: neutral sentences, as in the labelled sets
            adjective = rng.choice(positive + negative)
            corpus.append(_fill(rng.choice(NEUTRAL_TEMPLATES), rng, adjective))
        elif index % 2:
            corpus.append(_fill(rng.choice(POSITIVE_CONTEXTS), rng, rng.choice(positive)))
        else:
            corpus.append(_fill(rng.choice(NEGATIVE_CONTEXTS), rng, rng.choice(negative)))
    rng.shuffle(corpus)
    train = _labelled(n_train, POSITIVE_SEEN, NEGATIVE_SEEN, rng)
    valid = _labelled(n_valid, POSITIVE_SEEN, NEGATIVE_SEEN, rng)
    test = _labelled(n_test, POSITIVE_UNSEEN, NEGATIVE_UNSEEN, rng)
    return TextWorld(
        corpus, train, valid, test,
        seen_words={"positive": list(POSITIVE_SEEN), "negative": list(NEGATIVE_SEEN)},
        unseen_words={"positive": list(POSITIVE_UNSEEN), "negative": list(NEGATIVE_UNSEEN)},
        seed=seed,
    )
