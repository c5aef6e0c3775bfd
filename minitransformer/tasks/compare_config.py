"""Settings of a comparison sweep (``minitransformer compare``): which starts, which label budgets,
which seeds, how long each run trains; read from a TOML file and ``--set`` overrides.

A compare file has top-level keys, one ``[finetune]`` table of settings every start shares, and
one ``[[starts]]`` table per start (a name plus its own FinetuneConfig settings)::

    data = "../shared/data/aclImdb_v1.tar.gz"
    sizes = [250, 1000, 4000, "all"]     # labelled training examples per run
    seeds = [0, 1, 2]                    # sizes above max_seeded_size run the first seed only
    epochs = 4                           # steps = clamp(ceil(epochs*size/batch_size),
    min_steps = 150                      #               min_steps, max_steps)
    max_steps = 1500

    [finetune]                           # FinetuneConfig settings shared by every start
    seq_len = 256
    pooling = "mean"

    [[starts]]
    name = "scratch"

    [[starts]]
    name = "glove"
    glove = "../shared/data/glove.6B.50d.top50k.txt.gz"
    n_heads = 2                          # a start may override a shared setting

Overrides: ``--set KEY=VALUE`` for a top-level key, the value read as TOML (``sizes=[250,1000]``,
``baseline=false``) or, where that fails, as text (``data=aclImdb``); a list may also be given
with commas (``seeds=0,1``). ``--set finetune.KEY=VALUE`` changes a shared fine-tuning setting,
``--set starts.NAME.KEY=VALUE`` one start's (``starts.mlm.init_from=runs/mlm/last.npz``).
"""

import dataclasses
import math
import re
from dataclasses import dataclass, field

from minitransformer.tasks.config import ConfigError, load_config, parse_value, read_toml
from minitransformer.tasks.finetune import FinetuneConfig

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = [
    "BASELINE", "CompareConfig", "budget_steps", "describe_budget", "load_compare_config",
    "run_config",
]

BASELINE = "baseline"  # the name of the bag-of-words rows; no start may take it

# FinetuneConfig settings that the sweep sets for each run, and the compare key that sets them
SET_BY_SWEEP = {
    "data": "the top-level key data", "n_train": "sizes", "seed": "seeds",
    "steps": "epochs, min_steps and max_steps", "eval_every": "evals",
    "out_dir": "out_dir (or --out)", "progress": "progress (or --no-progress)",
    "resume": "nothing: a sweep resumes from its compare.csv",
}
# settings every start must share, so that all see the same examples for as many steps
SHARED_ONLY = ("batch_size", "valid_fraction", "n_test")
FINETUNE_KEYS = tuple(f.name for f in dataclasses.fields(FinetuneConfig))
LIST_KEYS = ("sizes", "seeds")
DEFAULT_STARTS = ({"name": "scratch"},)


@dataclass
class CompareConfig:
    """Settings of ``compare`` (and of ``minitransformer compare``).

    data: "builtin" (the text world) or an IMDB ``aclImdb`` folder or ``aclImdb_v1.tar.gz``
    (read once for the whole sweep).
    sizes: labelled training examples per run: positive ints, or "all" (the whole training split
    after the validation hold-out); a size above what the split holds also means all of it.
    seeds: each size up to ``max_seeded_size`` runs every seed; a bigger size the first only.
    baseline: also fit TF-IDF + logistic regression on each (size, seed) (needs scikit-learn).
    epochs, min_steps, max_steps: the fine-tuning budget, a rule of the size alone, the same for
    every start: steps = clamp(ceil(epochs * size / batch_size), min_steps, max_steps).
    evals: validation evaluations per run (eval_every = ceil(steps / evals)); each run tests the
    checkpoint its validation accuracy liked best.
    starts: a list of dicts, each ``name`` plus FinetuneConfig settings of that start.
    finetune: FinetuneConfig settings shared by every start (a start's own settings win).
    out_dir: holds compare.csv, compare.md, compare.png and runs/<start>-n<size>-s<seed>/.
    progress: also say when each run starts (a line per finished run is always printed).
    keep_checkpoints: False deletes each run's .npz files once its row is written.
    """

    data: str = "builtin"
    sizes: list[int | str] = field(default_factory=lambda: [100, "all"])
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    max_seeded_size: int = 4000
    baseline: bool = True
    epochs: float = 3.0
    min_steps: int = 50
    max_steps: int = 2000
    evals: int = 4
    starts: list[dict] = field(default_factory=lambda: [dict(s) for s in DEFAULT_STARTS])
    finetune: dict = field(default_factory=dict)
    out_dir: str = "runs/compare"
    progress: bool = True
    keep_checkpoints: bool = True

    def __post_init__(self):
        _check_kind("data", self.data, str, "a path or \"builtin\"")
        for name in ("baseline", "progress", "keep_checkpoints"):
            _check_kind(name, getattr(self, name), bool, "true or false")
        _check_kind("out_dir", self.out_dir, str, "a folder")
        _check_kind("epochs", self.epochs, (int, float), "a number")
        for name in ("max_seeded_size", "min_steps", "max_steps", "evals"):
            _check_kind(name, getattr(self, name), int, "an integer")
        _check_list("sizes", self.sizes, lambda s: s == "all" or _is_int(s) and s > 0,
                    'positive integers or "all"')
        _check_list("seeds", self.seeds, _is_int, "integers")
        for name, valid, rule in (("epochs", self.epochs > 0, "> 0"),
                                  ("evals", self.evals >= 1, ">= 1"),
                                  ("max_seeded_size", self.max_seeded_size >= 0, ">= 0")):
            if not valid:
                raise ConfigError(f"CompareConfig: {name} = {getattr(self, name)} should be "
                                  f"{rule}")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ConfigError(f"CompareConfig: needs 1 <= min_steps <= max_steps, got min_steps="
                              f"{self.min_steps}, max_steps={self.max_steps}")
        _check_kind("finetune", self.finetune, dict, "a table of FinetuneConfig settings")
        self.finetune = dict(self.finetune)
        _check_settings("[finetune]", self.finetune, shared=True)
        self.starts = [dict(start) for start in _check_starts(self.starts)]
        if not self.starts and not self.baseline:
            raise ConfigError("CompareConfig: starts is empty and baseline is false; nothing "
                              "to compare")
        for start in self.starts:  # the types of every setting, before hours of runs
            try:
                run_config(self, start, None, self.seeds[0], self.out_dir)
            except ConfigError as error:
                raise ConfigError(f"CompareConfig: start {start['name']!r}: {error}") from None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_kind(name, value, kinds, expected):
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        raise ConfigError(f"CompareConfig: {name} = {value!r} should be {expected}")


def _check_list(name, values, valid, expected):
    if not isinstance(values, list) or not values:
        raise ConfigError(f"CompareConfig: {name} = {values!r} should be a non-empty list of "
                          f"{expected}")
    wrong = [value for value in values if not valid(value)]
    if wrong:
        raise ConfigError(f"CompareConfig: {name} should hold {expected}; {wrong[0]!r} is not "
                          f"(in {name} = {values!r})")
    twice = sorted({str(value) for value in values if values.count(value) > 1})
    if twice:
        raise ConfigError(f"CompareConfig: {name} lists {', '.join(twice)} more than once")


def _check_settings(where, settings, shared):
    """FinetuneConfig keys only, and none that the sweep sets (or, for a start, that all share)."""
    for key in settings:
        if key in SET_BY_SWEEP:
            raise ConfigError(f"CompareConfig: {where} sets {key!r}, which the sweep sets for "
                              f"each run; use {SET_BY_SWEEP[key]}")
        if not shared and key in SHARED_ONLY:
            raise ConfigError(f"CompareConfig: {where} sets {key!r}, which every start must "
                              "share (the same examples for as many steps); set it in "
                              "[finetune]")
        if key not in FINETUNE_KEYS:
            allowed = sorted(set(FINETUNE_KEYS) - set(SET_BY_SWEEP))
            raise ConfigError(f"CompareConfig: {where} has an unknown setting {key!r}; "
                              f"FinetuneConfig settings: {', '.join(allowed)}")


def _check_starts(starts):
    if not isinstance(starts, list) or not all(isinstance(s, dict) for s in starts):
        raise ConfigError(f"CompareConfig: starts should be a list of tables such as "
                          f'{{name = "scratch"}}, got {starts!r}')
    names = []
    for number, start in enumerate(starts, 1):
        name = start.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ConfigError(f"CompareConfig: start {number} needs a name of letters, digits, "
                              f"'_', '.' or '-' (it names a folder), got name = {name!r}")
        if name == BASELINE or name in names:
            why = "is the bag-of-words baseline's" if name == BASELINE else "is taken twice"
            raise ConfigError(f"CompareConfig: the start name {name!r} {why}; names must be "
                              f"unique (starts: {', '.join(names + [name])})")
        names.append(name)
        _check_settings(f"start {name!r}", {k: v for k, v in start.items() if k != "name"},
                        shared=False)
    return starts


def budget_steps(config, size):
    """Fine-tuning steps for ``size`` labelled examples, the same for every start:
    clamp(ceil(epochs * size / batch_size), min_steps, max_steps)."""
    steps = math.ceil(config.epochs * size / _batch_size(config))
    return min(max(steps, config.min_steps), config.max_steps)


def describe_budget(config):
    """The budget rule with its numbers, for reports."""
    return (f"steps = clamp(ceil({config.epochs:g} × size / {_batch_size(config)}), "
            f"{config.min_steps}, {config.max_steps})")


def _batch_size(config):
    return config.finetune.get("batch_size", FinetuneConfig.batch_size)


def run_config(config, start, size, seed, out_dir):
    """The FinetuneConfig of one run: the shared [finetune] settings, the start's own, then
    what the sweep sets (data, n_train=size, seed, steps, eval_every, out_dir; no progress bar).
    ``size`` None: every training example (n_train=None, the budget of min_steps)."""
    steps = budget_steps(config, size) if size is not None else config.min_steps
    settings = {**config.finetune, **{k: v for k, v in start.items() if k != "name"}}
    settings.update(data=config.data, n_train=size, seed=seed, steps=steps,
                    eval_every=math.ceil(steps / config.evals), out_dir=str(out_dir),
                    progress=False, resume=False)
    return load_config(FinetuneConfig, **settings)


def _parse_override(key, text):
    """A --set value as TOML (numbers, booleans, lists, quoted text), else as plain text; a list
    key also takes commas (seeds=0,1,2) or one value (sizes=250)."""
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        value = text
        if key in LIST_KEYS:
            return [_parse_override("", part.strip()) for part in text.split(",") if part]
    return [value] if key in LIST_KEYS and not isinstance(value, list) else value


def load_compare_config(path=None, overrides=(), **values):
    """A CompareConfig: its defaults, then the TOML file ``path``, then keyword ``values``, then
    the ``KEY=VALUE`` strings of ``overrides`` (``finetune.KEY=VALUE`` for a shared setting)."""
    allowed = [f.name for f in dataclasses.fields(CompareConfig)]
    settings = {}
    if path is not None:
        settings = read_toml(path, "compare")
        for key, value in settings.items():
            if key not in allowed:
                raise ConfigError(f"compare: {path} has an unknown key {key!r}; keys: "
                                  f"{', '.join(allowed)} ([finetune] and [[starts]] are "
                                  "tables)")
            if isinstance(value, dict) and key != "finetune":
                raise ConfigError(f"compare: {path}: [{key}] is a table; only [finetune] and "
                                  "[[starts]] are")
    settings.update(values)
    settings["finetune"] = dict(settings.get("finetune", {}))
    for override in overrides:
        key, equals, text = (part.strip() for part in override.partition("="))
        if not equals:
            raise ConfigError(f"--set {override}: expected KEY=VALUE")
        if key.startswith("finetune."):
            name = key[len("finetune."):]
            settings["finetune"][name] = parse_value(FinetuneConfig, name, text)
        elif key.startswith("starts.") and key.count(".") >= 2:
            start, name = key[len("starts."):].rsplit(".", 1)
            _start_named(settings, start, override)[name] = parse_value(FinetuneConfig, name,
                                                                        text)
        elif key in allowed and key not in ("starts", "finetune"):
            settings[key] = _parse_override(key, text)
        else:
            keys = [k for k in allowed if k not in ("starts", "finetune")]
            raise ConfigError(f"--set {override}: compare has no key {key!r}; keys: "
                              f"{', '.join(keys)}; or finetune.KEY (a shared setting), "
                              "starts.NAME.KEY (one start's)")
    return CompareConfig(**settings)


def _start_named(settings, name, override):
    """The start called ``name`` among ``settings["starts"]``, copied so the caller may edit."""
    starts = settings["starts"] = [dict(s) for s in settings.get("starts", DEFAULT_STARTS)]
    for start in starts:
        if start.get("name") == name:
            return start
    names = ", ".join(str(s.get("name")) for s in starts)
    raise ConfigError(f"--set {override}: no start is named {name!r}; starts: {names}")
