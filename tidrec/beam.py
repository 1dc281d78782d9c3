"""``python -m tidrec.beam``: latency of trie-constrained beam search, against HF ``generate``.

With ``--checkpoint runs/x/model/best.ckpt`` it decodes the run's test users with the trained
model (the run folder's ``data/`` and ``tokenizer/sids.parquet`` are found beside the checkpoint's
folder, or given by flags). Without one it builds a TIGER-size T5 with random weights over a
synthetic catalogue of ``--catalogue`` items. It then

* sweeps ``--batch-sizes`` and reports p50/p95/p99 latency, users/s and the largest batch whose
  p99 fits ``--budget-ms`` (with ``--exclude-history true`` each user's history is excluded, the
  dead-node set-up included in the time);
* times the unconstrained floor: the same encoder pass and cached decoder steps for B x K beams
  with no masking, selection or cache reordering;
* measures the masking kernel's share of decode time (a separate, instrumented pass);
* decodes ``--hf-batch`` users with Hugging Face ``generate(num_beams=K, num_return_sequences=K,
  prefix_allowed_tokens_fn=...)`` over a Python dict trie (how public TIGER reproductions
  decode), checks that both give the same top-k and prints the speed ratio;
* measures the trie's bytes per item at ``--memory-items`` synthetic items.

Writes ``beam.json`` and ``latency.png`` to ``--out`` and prints a summary table.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import T5ForConditionalGeneration

import tidrec.generate as generate
from tidrec.cli import check_range, run
from tidrec.device import require_cuda, resolve_device
from tidrec.errors import InputError
from tidrec.io import atomic_path, check_output_dir, write_json
from tidrec.vocab import Vocab
from trie import Trie


@dataclass(frozen=True, kw_only=True)
class BeamBenchConfig:
    """Options of the beam-search latency benchmark."""

    checkpoint: Path | None = None
    """A trained model checkpoint (runs/NAME/model/best.ckpt); none: random TIGER-size weights."""
    recipe: Literal["onepass", "examples"] = "onepass"
    """Without a checkpoint, which random TIGER-size model: the one-pass model (one encoder token per
    history item, the default model) or TIGER's recipe (one encoder token per SID code)."""
    data: Path | None = None
    """Prepared dataset folder (default: data/ in the checkpoint's run folder)."""
    sids: Path | None = None
    """SID table (default: tokenizer/sids.parquet in the checkpoint's run folder)."""
    catalogue: int = 100_000
    """Synthetic catalogue size when no checkpoint is given."""
    level_sizes: tuple[int, ...] = (256, 256, 256)
    """Synthetic SID levels before the collision level (which is sized to fit)."""
    history: int = 20
    """Synthetic history items per user (with a checkpoint: the model's max_items)."""
    beam_size: int = 20
    """Beams per user (K); the top-K items are returned."""
    batch_sizes: tuple[int, ...] = (1, 8, 16, 32, 64, 128)
    """Users per batch to time."""
    budget_ms: float = 50.0
    """Latency budget per batch: the largest batch whose p99 fits is reported."""
    repeats: int = 20
    """Timed runs per batch size (after the warm-up runs)."""
    warmup: int = 2
    """Untimed runs per batch size."""
    kernel: Literal["torch", "gather", "compiled", "triton"] = "compiled"
    """Masking kernel for the timed decode."""
    exclude_history: bool = False
    """Exclude each user's history items in the timed decodes (exact, at every trie level)."""
    hf_batch: int = 64
    """Users decoded by HF generate for the side-by-side check, without exclusion (0: skip)."""
    hf_repeats: int = 3
    """Timed HF generate runs (it is slow)."""
    exact_users: int = 32
    """Users decoded one at a time by the exact decoder (beam search widened until certified), to
    time it per user (0: skip)."""
    max_beam: int = 1024
    """The widest beam the exact decoder may use for one user."""
    memory_items: int = 1_000_000
    """Synthetic items for the trie memory measurement (0: skip)."""
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    """Where to run."""
    threads: int = 1
    """torch CPU threads (2 pays off only on an otherwise idle machine; on a shared one it stalls)."""
    seed: int = 0
    """Seed for the synthetic catalogue, histories and random weights."""
    out: Path = Path("benchmarks/results/beam")
    """Folder for beam.json and latency.png."""

    def __post_init__(self) -> None:
        for flag, value in (
            ("--beam-size", self.beam_size),
            ("--repeats", self.repeats),
            ("--hf-repeats", self.hf_repeats),
            ("--threads", self.threads),
            ("--catalogue", self.catalogue),
            ("--history", self.history),
            *(("--batch-sizes", size) for size in self.batch_sizes),
            *(("--level-sizes", size) for size in self.level_sizes),
        ):
            check_range(flag, value, at_least=1)
        for flag, value in (
            ("--warmup", self.warmup),
            ("--hf-batch", self.hf_batch),
            ("--exact-users", self.exact_users),
            ("--memory-items", self.memory_items),
        ):
            check_range(flag, value, at_least=0)
        check_range("--seed", self.seed, at_least=0, below=2**32)
        check_range("--budget-ms", self.budget_ms, above=0)
        check_range("--max-beam", self.max_beam, at_least=self.beam_size)
        if self.device == "cuda":
            require_cuda("--device cuda")
        check_output_dir(self.out, "--out")


@dataclass
class Workload:
    """A model, its catalogue's SID tokens and users to decode for."""

    model: T5ForConditionalGeneration
    vocab: Vocab
    sid_tokens: np.ndarray
    """(I, L) token ids of every item's SID."""
    histories: list[np.ndarray]
    user_ids: list[str]
    max_items: int
    source: str
    onepass: Any = None
    """A one-pass model (:mod:`tidrec.models.tiger.onepass`) whose T5 is ``model``; None: TIGER's recipe."""

    @property
    def trie_softmax(self) -> bool:
        """Whether the model decodes with each step normalised over the trie's allowed tokens."""
        return self.onepass is not None and self.onepass.config.trie_softmax

    @property
    def node_vectors(self) -> list[torch.Tensor] | None:
        """A one-pass model's per-node output vectors (numbered as the trie of ``sid_tokens``), or None."""
        return None if self.onepass is None else self.onepass.node_vectors()

    def batch(self, size: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder inputs of ``size`` users starting at ``offset`` (cycling): SID tokens, or for a one-pass
        model the history's item_idx (one per item)."""
        from tidrec.model import encoder_inputs

        if self.onepass is not None:
            from tidrec.models.tiger.onepass import history_batch

            return history_batch(self.batch_histories(size, offset), self.onepass.num_items, self.max_items)
        return encoder_inputs(
            self.vocab,
            self.sid_tokens,
            self.batch_histories(size, offset),
            [self.user_ids[r] for r in self._rows(size, offset)],
            self.max_items,
        )

    def encoder_hidden(self, inputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(B, S, D)`` encoder outputs of a batch from :meth:`batch`."""
        if self.onepass is not None:
            from tidrec.models.tiger.onepass import encode_items

            return encode_items(self.onepass, inputs)
        return self.model.encoder(input_ids=inputs, attention_mask=attention_mask).last_hidden_state

    def encoder_state(self, inputs: torch.Tensor, attention_mask: torch.Tensor) -> generate.EncoderState:
        """What every decoder step needs, computed once per user (the encoder run included)."""
        if self.onepass is not None:
            from tidrec.models.tiger.onepass import decoder_state

            return decoder_state(self.onepass, inputs, attention_mask)
        return generate.cross_attention_state(
            self.model, self.encoder_hidden(inputs, attention_mask), attention_mask
        )

    def batch_histories(self, size: int, offset: int = 0) -> list[np.ndarray]:
        """History item_idx of the users :meth:`batch` encodes (what exclusion removes)."""
        return [self.histories[r] for r in self._rows(size, offset)]

    def _rows(self, size: int, offset: int) -> list[int]:
        return [(offset + i) % len(self.histories) for i in range(size)]


# ---------------------------------------------------------------------- workloads
def synthetic_codes(num_items: int, level_sizes: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """``(I, L+1)`` unique code tuples: skewed codes per level, then a collision code.

    Codes are drawn from a Dirichlet-skewed distribution per level (as real codebooks are unevenly
    used), so some tuples repeat; the collision level numbers the repeats 0, 1, 2, ...
    """
    columns = []
    for size in level_sizes:
        weights = rng.dirichlet(np.full(size, 2.0))
        columns.append(rng.choice(size, size=num_items, p=weights))
    codes = np.stack(columns, 1)  # (I, L)
    _, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    group_start = np.r_[0, np.flatnonzero(np.diff(inverse[order])) + 1]
    rank = np.arange(num_items) - np.repeat(group_start, np.diff(np.r_[group_start, num_items]))
    collision = np.empty(num_items, dtype=np.int64)
    collision[order] = rank
    return np.concatenate([codes, collision[:, None]], 1)


def synthetic_workload(config: BeamBenchConfig) -> Workload:
    from tidrec.model import build_model, tiger_model

    rng = np.random.default_rng(config.seed)
    codes = synthetic_codes(config.catalogue, config.level_sizes, rng)
    level_sizes = (*config.level_sizes, int(codes[:, -1].max()) + 1)
    num_users = max(max(config.batch_sizes), config.hf_batch, 1)
    histories = [rng.integers(0, config.catalogue, size=config.history) for _ in range(num_users)]
    users = [f"user{u}" for u in range(num_users)]
    source = f"random TIGER-size T5 ({config.recipe}), synthetic catalogue of {config.catalogue} items"
    torch.manual_seed(config.seed)
    if config.recipe == "onepass":
        from tidrec.models.tiger import SIZES
        from tidrec.models.tiger.onepass import OnePassConfig, build_onepass

        size = SIZES["tiger"]
        vocab = Vocab(level_sizes=level_sizes, user_buckets=0)
        sid_tokens = vocab.sid_tokens(codes)
        onepass = build_onepass(
            OnePassConfig(
                **{k: size[k] for k in ("d_model", "num_layers", "num_heads", "d_kv", "d_ff")},
                num_decoder_layers=size["num_layers"],
                max_items=config.history,
                item_id_embedding=True,
                recency_bias=True,
            ),
            vocab,
            sid_tokens,
        ).eval()
        torch.nn.init.normal_(onepass.recency.weight)  # as a trained bias, not the zeros it starts from
        return Workload(
            onepass.t5,
            vocab,
            sid_tokens,
            histories,
            users,
            config.history,
            source,
            onepass=onepass,
        )
    model_config = tiger_model()
    vocab = Vocab(level_sizes=level_sizes, user_buckets=model_config.user_buckets)
    model = build_model(model_config, vocab).eval()
    return Workload(model, vocab, vocab.sid_tokens(codes), histories, users, config.history, source)


def run_folder_of(checkpoint: Path) -> Path:
    """The run folder of a checkpoint (``<run>/models/<model>/best.ckpt``): the nearest ancestor
    holding ``tokenizer/sids.parquet``, else the folder two levels above the checkpoint's own."""
    folder = checkpoint.resolve().parent
    for ancestor in (folder, *folder.parents):
        if (ancestor / "tokenizer" / "sids.parquet").is_file():
            return ancestor
    return folder.parent.parent


def checkpoint_workload(config: BeamBenchConfig) -> Workload:
    from tidrec.artifacts import check_checkpoint, checkpoint_record, read_checkpoint
    from tidrec.data.dataset import load_dataset
    from tidrec.model import load_checkpoint
    from tokenizer.sid_table import SidTable

    assert config.checkpoint is not None
    checkpoint = read_checkpoint(config.checkpoint, mmap=True)
    run_dir = run_folder_of(config.checkpoint)
    data = config.data or run_dir / "data"
    sids_path = config.sids or run_dir / "tokenizer" / "sids.parquet"
    if not sids_path.is_file():
        raise InputError(f"{sids_path}: SID table not found (give --sids)")
    record = checkpoint_record(checkpoint, config.checkpoint)
    dataset = load_dataset(data)
    sids = SidTable.load(sids_path)
    split = dataset.split("test")
    users = [str(u) for u in dataset.user_ids[split.users]]
    onepass = None
    if record.entry.get("recipe") == "onepass":  # checks the data and SIDs, which may extend its own
        from tidrec.models.tiger.onepass_train import load_onepass

        onepass = load_onepass(
            config.checkpoint,
            dataset=dataset,
            sids=sids,
            sids_path=sids_path,
            data_path=data,
        ).eval()
        model, vocab, max_items, kind = onepass.t5, onepass.vocab, onepass.config.max_items, " (one-pass)"
    else:
        check_checkpoint(
            record, dataset_hash=dataset.content_hash, data_path=data, sid_hash=sids.content_hash(),
            sids_path=sids_path,
        )  # fmt: skip
        loaded = load_checkpoint(config.checkpoint)
        model, vocab, max_items, kind = loaded.model, loaded.vocab, loaded.config.max_items, ""
    return Workload(
        model.eval(),
        vocab,
        vocab.sid_tokens(sids.codes),
        split.histories,
        users,
        max_items,
        f"{config.checkpoint}{kind} on {dataset.name} test users ({dataset.num_items} items)",
        onepass=onepass,
    )


# ---------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_runs(fn: Callable[[], Any], *, repeats: int, warmup: int, device: torch.device) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
    return times


def percentiles(times: list[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


@torch.inference_mode()
def unconstrained_floor(workload: Workload, inputs, attention_mask, *, beam_size, steps) -> None:
    """The model's cost alone: encoder once, ``steps`` cached decoder steps (to logits) for B x K beams.

    No log-softmax, masking, selection or beam reordering: what any decoder of this model pays.
    """
    model = workload.model
    encoder = workload.encoder_state(inputs, attention_mask)
    bias = generate.self_attention_bias(model, steps, inputs.device)
    tokens = torch.zeros((inputs.shape[0], 1), dtype=torch.long, device=inputs.device)
    cache = None
    for _ in range(steps):
        _, cache = generate.decoder_step(model, tokens, encoder, cache, bias)
        if tokens.shape[1] == 1:  # after the first step every user has K beams
            tokens = tokens.expand(-1, beam_size)
            cache = cache.reorder(torch.zeros_like(tokens))


@contextlib.contextmanager
def timed_kernel(device: torch.device) -> Iterator[list[float]]:
    """Record the milliseconds spent in the masking kernel while the block runs."""
    spent: list[float] = []
    original = generate.constrained_candidates

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _sync(device)
        start = time.perf_counter()
        result = original(*args, **kwargs)
        _sync(device)
        spent.append((time.perf_counter() - start) * 1000)
        return result

    generate.constrained_candidates = wrapper
    try:
        yield spent
    finally:
        generate.constrained_candidates = original


# ---------------------------------------------------------------------- HF generate
def dict_trie(sid_tokens: np.ndarray) -> dict:
    """Nested dicts token -> subtree; the last level maps token -> item_idx."""
    root: dict = {}
    for item, row in enumerate(sid_tokens.tolist()):
        node = root
        for token in row[:-1]:
            node = node.setdefault(token, {})
        node[row[-1]] = item
    return root


@contextlib.contextmanager
def onepass_cross_bias(workload: Workload) -> Iterator[None]:
    """While open, T5's decoder reads a one-pass model's cross-attention bias instead of the padding
    mask ``generate`` hands it (``generate`` takes 2D masks only; T5 adds a 4D float mask as it is).

    The bias follows from the (beam-expanded) padding mask alone: queries predict after each row's
    last real item (:func:`tidrec.models.tiger.onepass.cross_attention_bias`). Nothing for TIGER's recipe.
    """
    if workload.onepass is None:
        yield
        return
    from tidrec.models.tiger.onepass import cross_attention_bias

    def to_bias(module, args, kwargs):
        mask = kwargs.get("encoder_attention_mask")
        if mask is not None and mask.ndim == 2:
            latest = mask.sum(dim=1, keepdim=True) - 1  # (B*K, 1)
            dtype = kwargs["encoder_hidden_states"].dtype
            kwargs["encoder_attention_mask"] = cross_attention_bias(
                workload.onepass, latest, mask.shape[1], dtype=dtype
            )  # (B*K, H or 1, 1, S)
        return args, kwargs

    handle = workload.model.decoder.register_forward_pre_hook(to_bias, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def hf_constrained(workload: Workload, inputs, attention_mask, *, root: dict, beam_size: int, levels: int):
    """Top-K items and scores from HF beam search with ``prefix_allowed_tokens_fn`` over ``root``.

    A one-pass model's causal encoder is run here and handed to ``generate`` as ``encoder_outputs``.
    """
    model = workload.model
    if workload.onepass is not None:
        from transformers.modeling_outputs import BaseModelOutput

        with torch.inference_mode():
            hidden = workload.encoder_hidden(inputs, attention_mask)
        encoder_inputs: dict[str, Any] = {"encoder_outputs": BaseModelOutput(last_hidden_state=hidden)}
    else:
        encoder_inputs = {"input_ids": inputs}

    def allowed(batch_id: int, sent: torch.Tensor) -> list[int]:
        node: Any = root
        for token in sent.tolist()[1:]:  # position 0 is the decoder start token
            node = node[token]
        return list(node.keys())

    with torch.inference_mode(), onepass_cross_bias(workload):
        out = model.generate(
            **encoder_inputs,
            attention_mask=attention_mask,
            num_beams=beam_size,
            num_return_sequences=beam_size,
            max_new_tokens=levels,
            min_new_tokens=levels,
            prefix_allowed_tokens_fn=allowed,
            do_sample=False,
            length_penalty=0.0,
            early_stopping=True,
            output_scores=True,
            return_dict_in_generate=True,
        )
    sequences = out.sequences[:, 1 : levels + 1].tolist()
    items = []
    for seq in sequences:
        node: Any = root
        for token in seq:
            node = node[token]
        items.append(node)
    batch = inputs.shape[0]
    return np.array(items).reshape(batch, beam_size), out.sequences_scores.view(
        batch, beam_size
    ).cpu().numpy()


# ---------------------------------------------------------------------- the benchmark
def benchmark(config: BeamBenchConfig) -> dict[str, Any]:
    """Run every measurement; write JSON and the plot; print the summary. Returns the results."""
    check_output_dir(config.out, "--out", create=True)  # before minutes of timing, not after
    torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    workload = checkpoint_workload(config) if config.checkpoint else synthetic_workload(config)
    model = workload.model.to(device)
    if workload.onepass is not None:
        workload.onepass.to(device)  # its item tables too (the T5 is shared)
    start = time.perf_counter()
    trie = Trie.from_codes(workload.sid_tokens)
    build_s = time.perf_counter() - start
    K, levels = config.beam_size, trie.depth
    print(
        f"tidrec.beam: {workload.source}; {trie.num_items} items, {levels} levels, beam {K}, "
        f"kernel {config.kernel}, {device}, {torch.get_num_threads()} threads"
        + (", history excluded" if config.exclude_history else "")
    )

    def decode(ids, mask, kernel=config.kernel, exclude=None):
        encoder = workload.encoder_state(ids, mask)
        return generate.beam_search(
            model, encoder=encoder, trie=trie, beam_size=K, kernel=kernel, exclude=exclude,
            trie_softmax=workload.trie_softmax, node_vectors=workload.node_vectors,
        )  # fmt: skip

    def floor(ids, mask):
        return unconstrained_floor(workload, ids, mask, beam_size=K, steps=levels)

    rows = []
    for size in tqdm(config.batch_sizes, desc="batch sizes", unit="batch", disable=None):
        ids, mask = (t.to(device) for t in workload.batch(size))
        exclude = workload.batch_histories(size) if config.exclude_history else None
        rows.append(
            measure_batch(
                config, device, partial(decode, ids, mask, exclude=exclude), partial(floor, ids, mask), size
            )
        )
        rows[-1]["certified"] = float(decode(ids, mask, exclude=exclude).certified.float().mean())
    fitting = [r for r in rows if r["p99_ms"] <= config.budget_ms]
    best = max(fitting, key=lambda r: r["batch"]) if fitting else None

    results: dict[str, Any] = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "source": workload.source,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "trie": {
            "items": trie.num_items,
            "levels": levels,
            "nbytes": trie.nbytes,
            "bytes_per_item": trie.bytes_per_item,
            "build_s": build_s,
        },
        "batches": rows,
        "within_budget": best
        and {"batch": best["batch"], "p99_ms": best["p99_ms"], "users_per_s": best["users_per_s"]},
    }
    bidirectional = workload.onepass is not None and workload.onepass.config.bidirectional
    if config.hf_batch and workload.trie_softmax:
        print("HF generate not compared: it normalises over the whole vocabulary, this model over the trie")
    elif config.hf_batch and bidirectional:
        print("HF generate not compared: this masked-item model reads the history with a mask appended")
    elif config.hf_batch:
        results["hf"] = compare_with_hf(config, workload, trie, model, device, decode)
    if config.exact_users:
        results["exact"] = measure_exact(config, workload, trie, model, device)
    if config.memory_items:
        results["memory"] = trie_memory(config.memory_items, config.level_sizes, config.seed)
    config.out.mkdir(parents=True, exist_ok=True)
    write_json(config.out / "beam.json", results)
    plot(rows, config, config.out / "latency.png")
    print_summary(results, config)
    return results


def measure_batch(config: BeamBenchConfig, device: torch.device, decode, floor, size: int) -> dict[str, Any]:
    """Latency percentiles of ``decode()``, its unconstrained floor and the masking kernel's share.

    The three measurements are interleaved run by run so that a noisy, shared machine slows them
    alike; the kernel share comes from separate instrumented runs (the wrapper syncs the device).
    """
    for _ in range(config.warmup):
        decode()
        floor()
    times, floor_times, total, spent = [], [], [], []
    for repeat in range(config.repeats):
        times += time_runs(decode, repeats=1, warmup=0, device=device)
        floor_times += time_runs(floor, repeats=1, warmup=0, device=device)
        if repeat % 4 == 0:
            with timed_kernel(device) as kernel_ms:
                total += time_runs(decode, repeats=1, warmup=0, device=device)
            spent.append(sum(kernel_ms))
    p50 = statistics.median(times)
    return {
        "batch": size,
        **percentiles(times),
        "users_per_s": size / (p50 / 1000),
        "floor_p50_ms": statistics.median(floor_times),
        "vs_floor": p50 / statistics.median(floor_times),
        "mask_ms": statistics.median(spent),
        "mask_share": statistics.median(s / t for s, t in zip(spent, total, strict=True)),
    }


def measure_exact(config: BeamBenchConfig, workload: Workload, trie: Trie, model, device) -> dict[str, Any]:
    """The exact decoder's cost per user: ``exact_users`` users decoded one at a time.

    Each user's beam search starts at ``beam_size`` and doubles until its top-``beam_size`` list is
    certified or ``max_beam`` is reached.
    """
    times, beams, first, certified = [], [], [], []
    for user in tqdm(range(config.exact_users), desc="exact decoding", unit="user", disable=None):
        ids, mask = (t.to(device) for t in workload.batch(1, offset=user))
        exclude = workload.batch_histories(1, offset=user) if config.exclude_history else None
        _sync(device)
        start = time.perf_counter()
        result = generate.exact_search(
            model,
            encoder=workload.encoder_state(ids, mask),
            trie=trie,
            top_k=config.beam_size,
            max_beam=config.max_beam,
            exclude=exclude,
            kernel=config.kernel,
            trie_softmax=workload.trie_softmax,
            node_vectors=workload.node_vectors,
        )
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
        beams.append(int(result.beams[0]))
        certified.append(bool(result.certified[0]))
        first.append(beams[-1] == config.beam_size and certified[-1])
    return {
        "users": config.exact_users,
        "max_beam": config.max_beam,
        **percentiles(times),
        "certified_at_beam_size": float(np.mean(first)),
        "certified": float(np.mean(certified)),
        "beams_p50": float(np.median(beams)),
        "beams_max": int(max(beams)),
    }


def compare_with_hf(config, workload, trie, model, device, decode) -> dict[str, Any]:
    """Time HF generate over a dict trie at ``hf_batch`` users and compare its top-k with ours."""
    K, levels = config.beam_size, trie.depth
    ids, mask = (t.to(device) for t in workload.batch(config.hf_batch))
    root = dict_trie(workload.sid_tokens)
    ours = decode(ids, mask)
    hf_items, hf_scores = hf_constrained(workload, ids, mask, root=root, beam_size=K, levels=levels)
    hf_times, our_times, ref_times = [], [], []
    for _ in range(config.hf_repeats):  # interleaved: the same machine noise for all three
        hf_times += time_runs(
            lambda: hf_constrained(workload, ids, mask, root=root, beam_size=K, levels=levels),
            repeats=1,
            warmup=0,
            device=device,
        )
        our_times += time_runs(lambda: decode(ids, mask), repeats=3, warmup=0, device=device)
        ref_times += time_runs(lambda: decode(ids, mask, "torch"), repeats=1, warmup=0, device=device)
    our_items = ours.item_idx.cpu().numpy()
    same_rows = (our_items == hf_items).all(1)
    same_sets = [set(a) == set(b) for a, b in zip(our_items.tolist(), hf_items.tolist(), strict=True)]
    return {
        "batch": config.hf_batch,
        "hf_p50_ms": statistics.median(hf_times),
        "hf_runs": len(hf_times),
        "ours_p50_ms": statistics.median(our_times),
        "ours_torch_kernel_p50_ms": statistics.median(ref_times),
        "speedup": statistics.median(hf_times) / statistics.median(our_times),
        "identical_topk_rows": float(same_rows.mean()),
        "identical_topk_sets": float(np.mean(same_sets)),
        "max_abs_score_diff": float(np.abs(ours.log_probs.cpu().numpy() - hf_scores).max()),
    }


def trie_memory(num_items: int, level_sizes: tuple[int, ...], seed: int) -> dict[str, Any]:
    """Bytes per item of a trie over ``num_items`` synthetic SIDs."""
    codes = synthetic_codes(num_items, level_sizes, np.random.default_rng(seed + 1))
    offsets = np.cumsum([2, *level_sizes])[:-1]
    tokens = codes + np.r_[offsets, offsets[-1] + level_sizes[-1]]
    start = time.perf_counter()
    trie = Trie.from_codes(tokens)
    return {
        "items": num_items,
        "nbytes": trie.nbytes,
        "bytes_per_item": trie.bytes_per_item,
        "build_s": time.perf_counter() - start,
    }


def plot(rows: list[dict[str, Any]], config: BeamBenchConfig, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = [r["batch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (
        ("p50_ms", "decode p50"),
        ("p99_ms", "decode p99"),
        ("floor_p50_ms", "unconstrained floor p50"),
    ):
        ax.plot(batches, [r[key] for r in rows], marker="o", label=label)
    ax.axhline(config.budget_ms, color="grey", linestyle="--", label=f"budget {config.budget_ms:g} ms")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("users per batch")
    ax.set_ylabel("latency per batch (ms)")
    ax.set_title(f"Constrained beam search, K={config.beam_size}, kernel={config.kernel}")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def print_summary(results: dict[str, Any], config: BeamBenchConfig) -> None:
    names = ("batch", "p50 ms", "p95 ms", "p99 ms", "users/s", "floor ms", "vs floor", "mask %", "certified")
    print("\n" + " ".join(f"{name:>9}" for name in names))
    for r in results["batches"]:
        print(
            f"{r['batch']:>9} {r['p50_ms']:>9.1f} {r['p95_ms']:>9.1f} {r['p99_ms']:>9.1f} "
            f"{r['users_per_s']:>9.0f} {r['floor_p50_ms']:>9.1f} {r['vs_floor']:>8.2f}x "
            f"{100 * r['mask_share']:>8.1f}% {100 * r['certified']:>8.0f}%"
        )
    best = results["within_budget"]
    if best:
        print(
            f"largest batch with p99 <= {config.budget_ms:g} ms: {best['batch']} "
            f"(p99 {best['p99_ms']:.1f} ms, {best['users_per_s']:.0f} users/s)"
        )
    else:
        print(f"no batch size fits p99 <= {config.budget_ms:g} ms")
    t = results["trie"]
    print(f"trie: {t['items']} items, {t['nbytes'] / 1e6:.2f} MB, {t['bytes_per_item']:.1f} bytes/item")
    if "memory" in results:
        m = results["memory"]
        print(
            f"trie at {m['items']} items: {m['bytes_per_item']:.1f} bytes/item "
            f"({m['build_s']:.1f} s to build)"
        )
    if "hf" in results:
        h = results["hf"]
        print(
            f"HF generate at batch {h['batch']}: {h['hf_p50_ms']:.0f} ms vs ours {h['ours_p50_ms']:.1f} ms "
            f"-> {h['speedup']:.1f}x faster "
            f"(torch reference kernel: {h['ours_torch_kernel_p50_ms']:.1f} ms); "
            f"identical top-{config.beam_size}: {100 * h['identical_topk_rows']:.0f}% of users "
            f"(sets {100 * h['identical_topk_sets']:.0f}%), max score diff {h['max_abs_score_diff']:.1e}"
        )
    if "exact" in results:
        e = results["exact"]
        print(
            f"exact decoding, {e['users']} users one at a time: p50 {e['p50_ms']:.1f} ms, p99 "
            f"{e['p99_ms']:.1f} ms per user; certified at beam {config.beam_size}: "
            f"{100 * e['certified_at_beam_size']:.0f}%, within {e['max_beam']} beams: "
            f"{100 * e['certified']:.0f}% "
            f"(median width {e['beams_p50']:.0f}, widest {e['beams_max']})"
        )
    print(f"wrote {config.out / 'beam.json'} and {config.out / 'latency.png'}")


def main(argv: list[str] | None = None) -> int:
    return run(
        BeamBenchConfig,
        benchmark,
        argv,
        prog="python -m tidrec.beam",
        description="Latency of trie-constrained beam search against HF generate.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
