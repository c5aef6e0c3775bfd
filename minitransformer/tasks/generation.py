"""Text generation from a causal-LM checkpoint (``minitransformer generate``)."""

from minitransformer import checkpoint, decoding
from minitransformer.data import BOS_ID
from minitransformer.tasks.common import select_device, tokenizer_from_state, unknown_tokens
from minitransformer.tasks.pretrain import PretrainConfig, build_pretraining_model

__all__ = ["generate_text", "load_language_model"]


def load_language_model(path):
    """(model, tokenizer, settings) from a ``pretrain`` checkpoint with objective clm."""
    state = checkpoint.load(path)
    if state.get("task") != "pretrain" or state["config"]["objective"] != "clm":
        raise ValueError(f"generate: {path} is not a causal-LM checkpoint (made by: "
                         "minitransformer pretrain --set objective=clm)")
    config = PretrainConfig(**state["config"])
    tokenizer = tokenizer_from_state(state["tokenizer"], str(path))
    model = build_pretraining_model("clm", state["model_vocab_size"], config)
    checkpoint.load(path, model)
    return model, tokenizer, config


def generate_text(path, prompt, max_new_tokens=100, temperature=1.0, top_k=None, top_p=None,
                  seed=None, device="cpu", warn=None):
    """The prompt followed by ``max_new_tokens`` generated tokens, as text. The model sees at
    most its ``max_len`` last tokens (a sliding window). Prompt words the vocabulary lacks are
    read as <unk> and named through ``warn`` (a function of one line; None: not reported)."""
    select_device(device)
    model, tokenizer, config = load_language_model(path)
    unknown = unknown_tokens(tokenizer, prompt)
    if unknown and warn is not None:
        warn("generate: not in the vocabulary (read as <unk>): " +
             ", ".join(repr(piece) for piece in unknown))
    ids = tokenizer.encode(prompt) or [BOS_ID]
    new = decoding.generate(model, [ids], max_new_tokens, temperature, top_k, top_p, seed,
                            max_context=config.max_len)[0]
    return tokenizer.decode(ids + new, skip_special=True)
