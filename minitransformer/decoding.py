"""Generating sequences: greedy search, beam search and sampling, with a key/value cache.

For an encoder-decoder ``Transformer`` the source is encoded once; the decoder then produces one
token per step, each conditioned on the tokens before it (``greedy``, ``beam_search``,
``sample``). For a decoder-only ``CausalLanguageModel``, ``generate`` continues a prompt.

Each function returns, per input row, the generated ids without ``bos_id``, ending with
``eos_id`` when generation stopped on it; ``max_len`` bounds how many ids are generated (eos
included). Source positions holding ``pad_id`` are masked.

With ``use_cache=True`` every layer keeps the keys and values of earlier positions (see
``nn.transformer.DecodingCache``), so a step costs O(t) instead of O(t²); the outputs are the same
as without the cache (the tests check the logits to 1e-10).
"""

import math

from minitransformer import backend
from minitransformer.autograd import no_grad
from minitransformer.data.tokenizer import PAD_ID
from minitransformer.functional import padding_mask
from minitransformer.ops.softmax import log_softmax, softmax
from minitransformer.tensor import Tensor

__all__ = ["beam_search", "generate", "greedy", "sample"]


class _EvalMode:
    """Run a block in eval mode (no dropout) and without a graph; restore the mode after."""

    def __init__(self, model):
        self.model, self.no_grad = model, no_grad()

    def __enter__(self):
        self.training = self.model.training
        self.model.eval()
        self.no_grad.__enter__()

    def __exit__(self, *exc_info):
        self.no_grad.__exit__(*exc_info)
        self.model.train(self.training)


def _ids(values):
    return values if isinstance(values, Tensor) else Tensor(values)


def _check(function, max_len, **more):
    if max_len < 1:
        raise ValueError(f"{function}: max_len must be at least 1, got {max_len}")
    for name, value in more.items():
        if value is not None and value <= 0:
            raise ValueError(f"{function}: {name} must be positive, got {value}")


def _check_room(function, model, max_len):
    """The decoder reads <bos> plus up to max_len - 1 generated ids: they need positions."""
    positions = getattr(getattr(model, "tgt_positional", None), "max_len", None)
    if positions is not None and max_len > positions:
        raise ValueError(f"{function}: max_len={max_len} needs {max_len} decoder positions, but "
                         f"the model encodes at most {positions}; lower max_len")


class _Decoder:
    """One encoded source batch and the state needed to ask for next-token logits."""

    def __init__(self, model, src, pad_id, use_cache):
        self.model = model
        self.src_mask = padding_mask(src, pad_id) if pad_id is not None else None
        self.memory = model.encode(src, self.src_mask)  # (B, S, d_model)
        self.cache = model.new_cache() if use_cache else None

    def next_logits(self, ys):
        """Logits (B, V) of the token after ``ys`` (B lists of t ids); with the cache only the
        newest id of each row is decoded."""
        if self.cache is not None:
            hidden = self.model.decode(_ids([row[-1:] for row in ys]), self.memory, None,
                                       self.src_mask, self.cache)
        else:
            hidden = self.model.decode(_ids(ys), self.memory, None, self.src_mask)
        return self.model.project(hidden[:, -1])  # (B, V)

    def keep_rows(self, rows):
        """Follow beams: keep batch rows ``rows`` of the memory, mask and cache."""
        index = Tensor(rows)
        self.memory = self.memory[index]
        if self.src_mask is not None:
            self.src_mask = self.src_mask[index]
        if self.cache is not None:
            self.cache.reorder(index.data)


def _run(function, model, src, max_len, bos_id, eos_id, choose, use_cache, pad_id):
    """The loop greedy and sample share: ``choose(logits (B, V)) -> list of B ids``."""
    src = _ids(src)
    _check_room(function, model, max_len)
    with _EvalMode(model):
        decoder = _Decoder(model, src, pad_id, use_cache)
        rows = src.shape[0]
        ys = [[bos_id] for _ in range(rows)]
        outputs, finished = [[] for _ in range(rows)], [False] * rows
        for _ in range(max_len):
            chosen = choose(decoder.next_logits(ys))
            for row, token in enumerate(chosen):
                ys[row].append(token)
                if not finished[row]:
                    outputs[row].append(token)
                    finished[row] = token == eos_id
            if all(finished):
                break
    return outputs


def _argmax(logits):
    return backend.array_module(logits.data).argmax(logits.data, axis=-1).tolist()


def greedy(model, src, max_len, bos_id, eos_id, use_cache=True, pad_id=PAD_ID):
    """The most likely token at every step.

    Shapes: src (B, S) ids -> B lists of at most ``max_len`` ids.
    """
    _check("greedy", max_len)
    return _run("greedy", model, src, max_len, bos_id, eos_id, _argmax, use_cache, pad_id)


def _filter_logits(logits, top_k, top_p):
    """Logits (B, V) with everything outside the top-k / the nucleus of mass top_p set to -inf.
    The most likely token always stays."""
    xp = backend.array_module(logits)
    logits = logits.copy()
    if top_k is not None and top_k < logits.shape[-1]:
        kth = xp.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]  # (B, 1)
        logits[logits < kth] = -math.inf
    if top_p is not None and top_p < 1.0:
        order = xp.argsort(-logits, axis=-1)  # most likely first
        ranked = xp.take_along_axis(logits, order, axis=-1)
        probabilities = xp.exp(ranked - ranked[:, :1])
        probabilities /= probabilities.sum(axis=-1, keepdims=True)
        before = xp.cumsum(probabilities, axis=-1) - probabilities  # mass ranked above each
        drop = xp.zeros_like(before, dtype=bool)
        xp.put_along_axis(drop, order, before >= top_p, axis=-1)
        logits[drop] = -math.inf
    return logits


def _sampler(function, temperature, top_k, top_p, seed):
    """choose(logits (B, V)) -> B ids drawn from softmax(logits / temperature), filtered;
    temperature 0 means greedy. ``seed`` gives a private generator, else the shared one."""
    _check(function, 1, top_k=top_k, top_p=top_p)
    if temperature < 0:
        raise ValueError(f"{function}: temperature must be >= 0, got {temperature}")
    private = backend.local_generator(seed) if seed is not None else None

    def choose(logits):
        if temperature == 0:
            return _argmax(logits)
        filtered = _filter_logits(logits.data / temperature, top_k, top_p)
        rows = backend.to_numpy(softmax(Tensor._from_array(filtered)).data).astype("float64")
        generator = private if private is not None else backend.generator()
        chosen = []
        for probabilities in rows:  # inverse transform: the first id whose CDF passes u
            cumulative = probabilities.cumsum()
            u = float(generator.random()) * cumulative[-1]
            chosen.append(min(int(cumulative.searchsorted(u, side="right")), len(rows[0]) - 1))
        return chosen

    return choose


def sample(model, src, max_len, bos_id, eos_id, temperature=1.0, top_k=None, top_p=None,
           seed=None, use_cache=True, pad_id=PAD_ID):
    """Draw each token from softmax(logits / temperature), optionally restricted to the
    ``top_k`` most likely tokens or to the smallest set holding probability ``top_p``.

    ``seed`` makes the draws reproducible with a private generator; without it the shared
    generator (``manual_seed``) is used.
    """
    _check("sample", max_len)
    choose = _sampler("sample", temperature, top_k, top_p, seed)
    return _run("sample", model, src, max_len, bos_id, eos_id, choose, use_cache, pad_id)


def beam_search(model, src, beam_size, max_len, bos_id, eos_id, length_penalty=1.0,
                use_cache=True, pad_id=PAD_ID):
    """Keep the ``beam_size`` best partial hypotheses at every step; return the best finished.

    A hypothesis scores  Σ log p(token) / length ** length_penalty  (length counts the generated
    ids, eos included); 0.0 ranks by the raw sum, larger values favour longer outputs. The search
    stops when no unfinished hypothesis can still beat the best finished one (its raw sum can
    only fall), or at ``max_len``.

    Each step ranks the 2K best one-token extensions: an ``<eos>`` among the top K finishes its
    hypothesis, and the K best others continue (2K candidates leave at least K of them). So with
    ``beam_size=1`` and ``length_penalty=0.0`` the search is exactly greedy decoding.

    Shapes: src (B, S) ids -> B lists of generated ids (without ``<bos>``, ending with ``<eos>``
    when one was generated).
    """
    _check("beam_search", max_len, beam_size=beam_size)
    if length_penalty < 0:
        raise ValueError(f"beam_search: length_penalty must be >= 0, got {length_penalty}")
    src = _ids(src)
    _check_room("beam_search", model, max_len)
    with _EvalMode(model):
        return [_beam_one(model, src[row:row + 1], beam_size, max_len, bos_id, eos_id,
                          length_penalty, use_cache, pad_id) for row in range(src.shape[0])]


def _beam_one(model, src, beam_size, max_len, bos_id, eos_id, alpha, use_cache, pad_id):
    decoder = _Decoder(model, src, pad_id, use_cache)
    beams = [([bos_id], 0.0)]  # (ids with bos, raw log-probability)
    finished = []  # (score, ids without bos)

    def score(raw, length):
        return raw / length**alpha

    for step in range(1, max_len + 1):
        log_p = log_softmax(decoder.next_logits([ids for ids, _ in beams]), axis=-1).data
        xp = backend.array_module(log_p)
        totals = log_p + xp.asarray([raw for _, raw in beams], dtype=log_p.dtype)[:, None]
        vocab = totals.shape[1]
        count = min(totals.size, 2 * beam_size)
        flat = totals.reshape(-1)
        best = xp.argpartition(-flat, count - 1)[:count] if count < flat.size else \
            xp.arange(flat.size)
        best = best[xp.argsort(-flat[best], kind="stable")].tolist()
        survivors, rows = [], []
        for rank, index in enumerate(best):
            parent, token = divmod(index, vocab)
            ids, raw = beams[parent][0] + [token], float(flat[index])
            if token == eos_id:
                if rank < beam_size:  # only an <eos> within the top K ends a hypothesis
                    finished.append((score(raw, step), ids[1:]))
            elif len(survivors) < beam_size:
                survivors.append((ids, raw))
                rows.append(parent)
        if not survivors:
            break
        if finished:
            best_done = max(s for s, _ in finished)
            if best_done >= max(raw for _, raw in survivors) / max_len**alpha:
                break  # no unfinished hypothesis can catch up any more
        beams = survivors
        decoder.keep_rows(rows)
    else:
        finished += [(score(raw, max_len), ids[1:]) for ids, raw in beams]
    return max(finished, key=lambda item: item[0])[1]


def generate(model, prompt, max_new_tokens, temperature=1.0, top_k=None, top_p=None, seed=None,
             eos_id=None, use_cache=True, max_context=None):
    """Continue ``prompt`` (B, T) with a decoder-only language model.

    ``temperature=0`` picks the most likely token (greedy); otherwise tokens are sampled as in
    ``sample``. Returns B lists of the new ids (stopping early at ``eos_id`` when given).
    ``max_context`` (the model's positions): when prompt and output would not fit, each step
    reads only the last ``max_context`` tokens (a sliding window, recomputed without the cache).
    """
    _check("generate", max_new_tokens)
    choose = _sampler("generate", temperature, top_k, top_p, seed)
    prompt = _ids(prompt)
    if max_context is not None and prompt.shape[1] + max_new_tokens > max_context:
        use_cache = False  # the window slides: cached positions would shift
        prompt = prompt[:, -max_context:]
    with _EvalMode(model):
        cache = model.new_cache() if use_cache else None
        context = prompt.tolist()
        outputs, finished = [[] for _ in context], [False] * len(context)
        step_input = prompt  # the cache has seen nothing yet: feed the whole prompt once
        for _ in range(max_new_tokens):
            logits = model(step_input, cache)[:, -1]  # (B, V)
            chosen = choose(logits)
            for row, token in enumerate(chosen):
                context[row].append(token)
                if not finished[row]:
                    outputs[row].append(token)
                    finished[row] = eos_id is not None and token == eos_id
            if all(finished):
                break
            window = context if max_context is None else [row[-max_context:] for row in context]
            step_input = _ids([[t] for t in chosen] if cache is not None else window)
    return outputs
