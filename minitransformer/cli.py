"""The command line: ``minitransformer <command> ...`` (also ``python -m minitransformer ...``).

Every command is one row of the table COMMANDS at the bottom of this file: its name, the help
texts, its arguments, and ``run``, the function that does the work and returns an exit code.
The training commands (pretrain, finetune, train-seq2seq) name their settings class instead of
listing arguments, and share the options of ``SETTINGS_OPTIONS``. A new command is a run
function and one row.
"""

import argparse
import dataclasses
import os
import sys
import textwrap
import warnings
from pathlib import Path

from minitransformer import distributed
from minitransformer.data.download import ENV_BASE_URL, REGISTRY, default_data_dir, download
from minitransformer.errors import BackendUnavailableError, DTypeError
from minitransformer.train import TrainingInterrupted

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


def arg(*flags, **options):
    """One argument of a command: what ``parser.add_argument(*flags, **options)`` takes."""
    return flags, options


@dataclasses.dataclass(frozen=True)
class Command:
    """One command of the table: ``minitransformer NAME ...`` runs ``run(args)``.

    Attributes:
        name: the command's word on the command line.
        help: one line for ``minitransformer --help``.
        description: the paragraph of ``minitransformer NAME --help``.
        epilog: the examples after the options (kept as written, line by line).
        run: ``run(args) -> exit code``.
        arguments: ``arg(...)`` rows, added in order.
        settings: for the training commands, a function returning the settings dataclass;
            the command then takes ``SETTINGS_OPTIONS`` and lists the settings in its help.
    """

    name: str
    help: str
    description: str
    epilog: str
    run: object
    arguments: tuple = ()
    settings: object = None


# --------------------------------------------------------------------------- shared helpers


RUN_FOLDER_RULES = """\
the run folder (--out DIR):
  a new run refuses a DIR that holds a run: continue it with --resume, replace it with
  --overwrite. Ctrl-C or SIGTERM finishes the current step, saves DIR/last.npz and exits
  130 or 143; --resume then continues exactly where it stopped."""


def _plot(out_dir, title):
    """Write DIR/metrics.png; say where, or why not (rank 0 only under mpiexec)."""
    from minitransformer.viz import plot_history

    if not distributed.is_main():
        return
    try:
        path = plot_history(Path(out_dir) / "metrics.jsonl", title=title)
        print(f"curves: {path}")
    except ImportError as error:
        print(f"(no curves: {error})")
    except ValueError:
        pass


class _Formatter(argparse.HelpFormatter):
    """Wraps running text to the terminal; keeps text with line breaks (examples) as written."""

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _note(text):
    """A remark beside the output (on stderr, so that the output stays clean to pipe)."""
    print(f"minitransformer {text}", file=sys.stderr)


def _say(text):
    """Print on rank 0 only (every rank runs the command under mpiexec)."""
    if distributed.is_main():
        print(text)


def _count(least):
    """An argparse type: an int >= ``least`` (anything else is a usage error, exit 2)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
        return value

    parse.__name__ = f"int >= {least}"
    return parse


def _formatter(prog):
    return _Formatter(prog, max_help_position=32, width=min(100, _terminal_width()))


def _terminal_width():
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def _settings(config_class, args):
    from minitransformer.tasks.config import load_config

    values = {}
    for key, attribute in (("device", "device"), ("seed", "seed"), ("out_dir", "out")):
        if getattr(args, attribute) is not None:
            values[key] = getattr(args, attribute)
    if args.resume:
        values["resume"] = True
    if args.overwrite:
        values["overwrite"] = True
    if args.no_progress:
        values["progress"] = False
    return load_config(config_class, args.config, args.overrides, **values)


# --------------------------------------------------------------------------- what each command runs


def run_demo(args):
    from minitransformer.tasks.demo import FAST, demo

    demo(args.out, args.seed, fast=args.fast or FAST, device=args.device,
         progress=not args.no_progress)
    return 0


def run_pretrain(args):
    from minitransformer.tasks.pretrain import PretrainConfig, pretrain

    config = _settings(PretrainConfig, args)
    result = pretrain(config)
    _say(f"checkpoint: {result['checkpoint']}\nmetrics: {result['out_dir'] / 'metrics.jsonl'}")
    _plot(result["out_dir"], f"pretraining ({config.objective})")
    return 0


def run_finetune(args):
    from minitransformer.tasks.finetune import FinetuneConfig, finetune

    result = finetune(_settings(FinetuneConfig, args))
    _say(f"test accuracy: {result['test_accuracy']:.4f}\ncheckpoints: {result['out_dir']}")
    _plot(result["out_dir"], f"fine-tuning ({result['start']})")
    return 0


def run_seq2seq(args):
    from minitransformer.tasks.seq2seq import Seq2SeqConfig, train_seq2seq

    result = train_seq2seq(_settings(Seq2SeqConfig, args))
    _say(f"test {result['metric']}: {result['test']:.4f}\ncheckpoints: {result['out_dir']}")
    _plot(result["out_dir"], "sequence to sequence")
    return 0


def run_compare(args):
    from minitransformer.tasks.compare import compare, load_compare_config

    values = {"out_dir": args.out} if args.out else {}
    if args.no_progress:
        values["progress"] = False
    compare(load_compare_config(args.config, args.overrides, **values))
    return 0


def run_translate(args):
    from minitransformer.tasks.seq2seq import translate

    sentences = args.sentences or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    decode = "beam" if args.beam is not None else None
    for output in translate(args.checkpoint, sentences, decode=decode, beam_size=args.beam,
                            warn=_note):
        print(output)
    return 0


def run_generate(args):
    from minitransformer.tasks.generation import generate_text

    print(generate_text(args.checkpoint, args.prompt, args.max_new_tokens, args.temperature,
                        args.top_k, args.top_p, args.seed, args.device, warn=_note))
    return 0


def run_evaluate(args):
    from minitransformer.tasks.evaluation import NOTES, evaluate_checkpoint

    results = evaluate_checkpoint(args.checkpoint, args.overrides, args.device)
    for key, value in results.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    for key in results:
        if key in NOTES:
            print(f"({NOTES[key]})")
    return 0


def run_gradcheck(args):
    from minitransformer.tasks.checks import run_gradchecks

    return 1 if run_gradchecks(args.filter, fmt=args.format) else 0


def run_download(args):
    download(args.name, dest=args.dest, base_url=args.base_url, sha256=args.sha256,
             progress=False if args.no_progress else None)
    return 0


def run_explain_attention(args):
    import shutil

    from minitransformer.explain import attention

    explanation = attention(args.sentence, d_model=args.d_model, n_heads=args.heads,
                            causal=args.causal, seed=args.seed)
    width = min(100, shutil.get_terminal_size((100, 24)).columns)
    explanation.show(step=args.step, decimals=args.decimals, width=width)
    if args.png:
        try:
            print(f"heatmaps: {explanation.heatmaps(args.png)}")
        except ImportError as error:  # matplotlib is an optional extra
            print(f"minitransformer explain-attention: error: {error}", file=sys.stderr)
            return 1
    return 0


def run_explain(args):
    from minitransformer.explain.report import (
        explain_checkpoint,
        format_text_explanation,
        plot_token_scores,
    )

    result = explain_checkpoint(args.checkpoint, args.text, device=args.device, warn=_note)
    print(format_text_explanation(result, top=args.top))
    if args.png:
        title = (f"{args.checkpoint}: {result.label(result.predicted)} "
                 f"(p = {result.probabilities[result.predicted]:.2f}). Red: a large share "
                 "(rollout, attention), or toward the prediction (gradient×input); blue: away")
        try:
            print(f"figure: {plot_token_scores(result.panels(), args.png, title=title)}")
        except ImportError as error:  # matplotlib is an optional extra
            print(f"minitransformer explain: error: {error}", file=sys.stderr)
            return 1
    return 0


def run_grade(args):
    from minitransformer.tasks.grading import format_grades, grade_folder

    result = grade_folder(args.folder, args.chapter, args.timeout,
                          progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(format_grades(result))
    return 0


# --------------------------------------------------------------------------- the table


def _pretrain_settings():
    from minitransformer.tasks.pretrain import PretrainConfig

    return PretrainConfig


def _finetune_settings():
    from minitransformer.tasks.finetune import FinetuneConfig

    return FinetuneConfig


def _seq2seq_settings():
    from minitransformer.tasks.seq2seq import Seq2SeqConfig

    return Seq2SeqConfig


# what every training command (a Command with settings) takes
SETTINGS_OPTIONS = (
    arg("--config", metavar="FILE", help="a TOML settings file (flat key = value)"),
    arg("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
        help="override one setting (repeatable), e.g. --set steps=200"),
    arg("--device", choices=("cpu", "gpu"), help="cpu (NumPy) or gpu (CuPy)"),
    arg("--seed", type=int, help="seed of every random choice of the run"),
    arg("--out", metavar="DIR", help="where checkpoints, metrics and plots go"),
    arg("--resume", action="store_true", help="continue the run in DIR from DIR/last.npz"),
    arg("--overwrite", action="store_true",
        help="start a new run in a DIR that holds one, replacing its checkpoints and metrics"),
    arg("--no-progress", action="store_true", help="no progress bar"),
)

COMMANDS = [
    # ----------------------------------------------------------------------- the main job
    Command(
        "demo", run=run_demo,
        help="the main job on built-in data: pretraining vs training from scratch",
        description="Pretrain a small Transformer encoder (masked LM) on the built-in text "
                    "world's unlabelled corpus, fine-tune it as a sentiment classifier, train the "
                    "same classifier from scratch, and compare both on sentences whose sentiment "
                    "words the labelled data never showed. Under a minute on 2 CPU cores.",
        epilog="example:\n  minitransformer demo\n  minitransformer demo --fast --out runs/demo",
        arguments=(
            arg("--out", metavar="DIR", default="runs/demo", help="default: runs/demo"),
            arg("--fast", action="store_true",
                help="a much shorter run (also MINITRANSFORMER_FAST=1)"),
            arg("--device", choices=("cpu", "gpu"), default="cpu"),
            arg("--seed", type=int, default=0),
            arg("--no-progress", action="store_true", help="no progress bars"),
        ),
    ),
    # ----------------------------------------------------------------------- training
    Command(
        "pretrain", run=run_pretrain, settings=_pretrain_settings,
        help="pretrain on unlabelled text: masked LM, causal LM, replaced-token detection or "
             "denoising",
        description="Pretrain a Transformer on unlabelled text with masked-LM (mlm), causal-LM "
                    "(clm), replaced-token detection (rtd, ELECTRA) or span-corruption "
                    "denoising (denoise); report validation loss and perplexity; write "
                    "checkpoints (with settings and tokenizer) and metrics.",
        epilog="examples:\n  minitransformer pretrain --set objective=mlm --set steps=300\n"
               "  minitransformer pretrain --set objective=clm --set data=shakespeare.txt "
               "--set tokenizer=char",
    ),
    Command(
        "finetune", run=run_finetune, settings=_finetune_settings,
        help="train a text classifier: from a checkpoint, from GloVe, or from scratch",
        description="Fine-tune a sentiment classifier (built-in text world or IMDB) from a "
                    "pretrained checkpoint (init_from: mlm, clm or rtd), from GloVe vectors "
                    "(glove) or from scratch; report validation and test accuracy and a "
                    "confusion matrix.",
        epilog="examples:\n  minitransformer finetune --set init_from=runs/pretrain/last.npz\n"
               "  minitransformer finetune --set data=aclImdb_v1.tar.gz --set glove="
               "glove.6B.50d.txt.gz --set d_model=50 --set n_heads=5",
    ),
    Command(
        "train-seq2seq", run=run_seq2seq, settings=_seq2seq_settings,
        help="train the encoder-decoder: copy/reverse tasks or translation",
        description="Train the encoder-decoder Transformer with teacher forcing and label "
                    "smoothing on the built-in copy or reverse task, or on Multi30k; evaluate "
                    "by decoding (greedy or beam) with exact match or BLEU.",
        epilog="examples:\n  minitransformer train-seq2seq --set data=copy --set steps=600\n"
               "  minitransformer train-seq2seq --set data=multi30k/ --set decode=beam",
    ),
    Command(
        "compare", run=run_compare,
        help="fine-tuning starts x labelled-set sizes x seeds, with a baseline",
        description="Fine-tune a sentiment classifier from each start of a compare file (from "
                    "scratch, GloVe, pretrained checkpoints) on each labelled-set size and seed, "
                    "beside a TF-IDF + logistic-regression baseline on the same examples. Each "
                    "finished run is a row of DIR/compare.csv at once, so a stopped sweep "
                    "continues where it stopped; at the end DIR/compare.md (a table of mean ± "
                    "std test accuracy) and DIR/compare.png.",
        epilog="examples:\n  minitransformer compare --config configs/imdb_compare.toml\n"
               "  minitransformer compare --config configs/builtin_compare.toml \\\n"
               "      --set sizes=100,400 --set seeds=0,1,2 --set finetune.lr=3e-4\n\n"
               "--set KEY=VALUE: a top-level key of the compare file (value as TOML, else as "
               "text;\n  a list also as 0,1,2), finetune.KEY=VALUE (a shared fine-tuning "
               "setting) or\n  starts.NAME.KEY=VALUE (one start's setting).",
        arguments=(
            arg("--config", metavar="FILE",
                help="a compare file (TOML: top-level keys, [finetune], [[starts]]); "
                     "default: from scratch on built-in data"),
            arg("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                help="override one key (repeatable), e.g. --set seeds=0,1"),
            arg("--out", metavar="DIR", help="where compare.csv/.md/.png and the runs go"),
            arg("--no-progress", action="store_true",
                help="no line when a run starts (finished runs are still listed)"),
        ),
    ),
    # ----------------------------------------------------------------------- using checkpoints
    Command(
        "translate", run=run_translate,
        help="translate sentences with a train-seq2seq checkpoint",
        description="Decode each sentence given (or each line of standard input) with a "
                    "checkpoint of train-seq2seq. For the copy/reverse tasks, give ids separated "
                    "by spaces.",
        epilog='examples:\n  minitransformer translate runs/seq2seq/best.npz "7 8 9 10"\n'
               "  minitransformer translate runs/m30k/best.npz --beam 5 < sentences.en",
        arguments=(
            arg("checkpoint"),
            arg("sentences", nargs="*", help="default: the lines of standard input"),
            arg("--beam", type=_count(1), metavar="K",
                help="beam search of width K >= 1 (default: the checkpoint's decoding)"),
        ),
    ),
    Command(
        "generate", run=run_generate,
        help="continue a prompt with a causal-LM checkpoint",
        description="Generate text after a prompt with a checkpoint of pretrain "
                    "(objective=clm), with temperature, top-k and top-p sampling.",
        epilog='example:\n  minitransformer generate runs/charlm/last.npz --prompt "ROMEO:" '
               "--max-new-tokens 200 --temperature 0.8",
        arguments=(
            arg("checkpoint"),
            arg("--prompt", default="", help="the text to continue"),
            arg("--max-new-tokens", type=_count(1), default=100, metavar="N",
                help="default: 100"),
            arg("--temperature", type=float, default=1.0, help="0 = greedy"),
            arg("--top-k", type=_count(1), metavar="K", help="sample among the K likeliest tokens"),
            arg("--top-p", type=float),
            arg("--seed", type=int),
            arg("--device", choices=("cpu", "gpu"), default="cpu"),
        ),
    ),
    Command(
        "evaluate", run=run_evaluate,
        help="score a checkpoint on its task's held-out data",
        description="Evaluate a checkpoint of pretrain (validation loss, perplexity), finetune "
                    "(test accuracy, confusion matrix) or train-seq2seq (test exact match or "
                    "BLEU) on the data its settings name (or --set data=...).",
        epilog="example:\n  minitransformer evaluate runs/finetune/best.npz",
        arguments=(
            arg("checkpoint"),
            arg("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                help="change a stored setting, e.g. --set data=PATH"),
            arg("--device", choices=("cpu", "gpu"), default="cpu"),
        ),
    ),
    Command(
        "gradcheck", run=run_gradcheck,
        help="prove every op and layer: the whole gradient-check registry",
        description="Run every gradient check of the registry (float64 central differences "
                    "against backpropagation) and print a table, primitive ops first, then "
                    "layers, then models: case, classes covered, shapes, largest error, "
                    "tolerance, result.",
        epilog="examples:\n  minitransformer gradcheck\n  minitransformer gradcheck --filter "
               "attention\n  minitransformer gradcheck --format markdown > gradchecks.md",
        arguments=(
            arg("--filter", metavar="TEXT", help="only cases whose name contains TEXT"),
            arg("--format", choices=("text", "markdown", "csv"), default="text",
                help="text (default), markdown or csv (for handouts)"),
        ),
    ),
    Command(
        "download", run=run_download,
        help="fetch a real data set (IMDB, GloVe, Multi30k), verified and cached",
        description="Download a data set over HTTPS, verify its checksum, resume a broken "
                    "download, and print where the files are. A file already in place and "
                    "verified is not fetched again.",
        epilog="examples:\n  minitransformer download imdb\n"
               "  minitransformer download glove --dest data/",
        arguments=(
            arg("name", choices=sorted(REGISTRY),
                help="; ".join(f"{n}: {s.description}" for n, s in REGISTRY.items())),
            arg("--dest", metavar="DIR",
                help=f"parent folder of the data (default: {default_data_dir()}, or "
                     "$MINITRANSFORMER_DATA)"),
            arg("--base-url", metavar="URL",
                help=f"fetch each file from URL/<file name> (a mirror; default: "
                     f"${ENV_BASE_URL}, else the official sites)"),
            arg("--sha256", metavar="HEX",
                help="expected SHA-256 of the file (one-file data sets), replacing the "
                     "built-in checksum"),
            arg("--no-progress", action="store_true", help="no progress bar"),
        ),
    ),
    # ----------------------------------------------------------------------- teaching
    Command(
        "explain-attention", run=run_explain_attention,
        help="step through softmax(QKᵀ/√d_k)V and multi-head attention",
        description="Run one multi-head self-attention layer on a tiny sentence and print\n"
                    "every named intermediate with its shape and values: X, W^Q, W^K, W^V,\n"
                    "Q, K, V; per head Q_h, K_h, V_h, QKᵀ, QKᵀ/√d_k, the mask, the softmax\n"
                    "weights and weights·V; then Concat, W^O and the output. The result is\n"
                    "checked against F.scaled_dot_product_attention and nn.MultiHeadAttention.",
        epilog='examples:\n  minitransformer explain-attention\n'
               '  minitransformer explain-attention --sentence "the cat sat on the mat" '
               "--heads 2 --causal --step\n"
               "  minitransformer explain-attention --d-model 16 --heads 4 --png heads.png",
        arguments=(
            arg("--sentence", metavar="TEXT", default="the cat sat on the mat",
                help='words separated by spaces (default: "the cat sat on the mat")'),
            arg("--d-model", type=_count(1), default=8, metavar="N", help="default: 8"),
            arg("--heads", type=_count(1), default=2, metavar="H",
                help="number of heads, dividing d_model (default: 2)"),
            arg("--causal", action="store_true",
                help="the decoder's mask: each token sees only itself and earlier ones"),
            arg("--step", action="store_true", help="one step at a time: Enter for next"),
            arg("--png", metavar="PATH", help="also write per-head heatmaps to PATH"),
            arg("--seed", type=int, default=0, metavar="N",
                help="seeds the embeddings and weights (default: 0)"),
            arg("--decimals", type=_count(0), default=3, metavar="N",
                help="digits after the point, 0 or more (default: 3)"),
        ),
    ),
    Command(
        "explain", run=run_explain,
        help="why a fine-tuned classifier decided: rollout, attention, gradient×input",
        description="Classify one text with a checkpoint of finetune and print, for every "
                    "token, three explanations of the prediction: attention rollout (attention "
                    "through every layer and the residual stream), the last layer's attention "
                    "(both: the token's share of the position the classifier reads) and "
                    "gradient × input for the predicted class (+ toward it, - away). Which of "
                    "them is faithful is measured by explain.compare_explanations (deletion "
                    "curves).",
        epilog='examples:\n  minitransformer explain runs/finetune/best.npz "a moving, '
               'wonderful film"\n'
               '  minitransformer explain runs/imdb/best.npz "dull and far too long" '
               "--png why.png",
        arguments=(
            arg("checkpoint", help="a checkpoint written by minitransformer finetune"),
            arg("text", help="the text to classify and explain"),
            arg("--png", metavar="PATH",
                help="also write a figure: the tokens shaded by each explanation, one row each "
                     "(needs matplotlib)"),
            arg("--top", type=_count(1), default=5, metavar="K",
                help="list each explanation's K highest-scored tokens (default: 5)"),
            arg("--device", choices=("cpu", "gpu"), default="cpu"),
        ),
    ),
    Command(
        "grade", run=run_grade,
        help="grade a student's chapters and exercises, with partial credit",
        description="Run each chapter of DIR (a student edition made by "
                    "tools/student_edition.py) cell by cell in fast mode and give each code "
                    "block its point, and each exercise its points, when the checks after it "
                    "pass; print a table (chapter, block or exercise, points, what is wrong) and "
                    "write DIR/grade.json. Exits 0 whenever it could grade, whatever the score.",
        epilog="examples:\n  python tools/student_edition.py student/\n"
               "  minitransformer grade student/\n  minitransformer grade student/ --chapter 07",
        arguments=(
            arg("folder", metavar="DIR", help="the folder of the chapters (ch*.py)"),
            arg("--chapter", metavar="NN",
                help="only chapters whose file name contains NN (e.g. 07)"),
            arg("--timeout", type=_count(1), default=600, metavar="S",
                help="seconds a chapter may run (default: 600)"),
        ),
    ),
]


def _add_command(subparsers, command):
    """Declare one row of COMMANDS as a subcommand."""
    epilog = command.epilog
    arguments = command.arguments
    if command.settings is not None:
        arguments = SETTINGS_OPTIONS + arguments
        settings = ", ".join(f.name for f in dataclasses.fields(command.settings()))
        listed = textwrap.fill(f"settings (--set KEY=VALUE): {settings}", 96,
                               subsequent_indent="  ")
        epilog = f"{epilog}\n\n{RUN_FOLDER_RULES}\n\n{listed}"
    parser = subparsers.add_parser(command.name, help=command.help, formatter_class=_formatter,
                                   description=command.description, epilog=epilog or None)
    for flags, options in arguments:
        parser.add_argument(*flags, **options)
    parser.set_defaults(run=command.run)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minitransformer",
        description="minitransformer: a Transformer framework built from scratch, written to be "
                    "read.",
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for command in COMMANDS:
        _add_command(subparsers, command)
    return parser


def main(argv=None):
    """Run the command line; returns the exit code (0 on success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            # a diverging run makes NumPy warn (overflow, invalid value) before the Trainer
            # stops it with one line that says more; the warnings would only bury that line
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="minitransformer")
            return args.run(args)
    except TrainingInterrupted as stop:  # Ctrl-C or SIGTERM: the step finished and was saved
        # the commands without --resume (demo, compare: it says itself how to continue) name
        # only the signal
        said = stop if hasattr(args, "resume") else f"interrupted by {stop.signal_name}"
        print(f"minitransformer {args.command}: {said}", file=sys.stderr)
        return stop.exit_code
    except BrokenPipeError:  # the reader of our output went away (e.g. `| head`): not an error
        _silence_stdout()
        return 0
    except (ValueError, DTypeError, OSError, BackendUnavailableError,
            FloatingPointError) as error:
        # a user's mistake (bad setting, missing file, wrong checkpoint) or a diverged run: one
        # clear line, no traceback; MINITRANSFORMER_DEBUG=1 shows the traceback too
        if os.environ.get("MINITRANSFORMER_DEBUG") == "1":
            raise
        print(f"minitransformer {args.command}: error: {_message(error, args.command)}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minitransformer {args.command}: interrupted", file=sys.stderr)
        return 130


def _message(error, command):
    """The error's text without a leading "<command>: " that the line already says."""
    text = str(error)
    for prefix in (f"{command}: ", f"{command.replace('-', '_')}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _silence_stdout():
    """After a broken pipe, point stdout at /dev/null so that Python's exit flush of the
    buffered output raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
