"""``python -m tidrec.run --dataset ml-100k --out runs/ml-100k``: tokenize -> fit -> evaluate, end to end.

Prepares the dataset and SIDs (``tidrec.tokenize``), trains the generative model (``tidrec.fit``),
fits the requested baselines, evaluates every model on the same leave-one-out test split with the
same full-catalogue ranking, and writes ``<out>/results.json`` and ``<out>/results.md``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tidrec.cli import run as run_cli
from tidrec.data.dataset import load_dataset
from tidrec.errors import ConfigError
from tidrec.evaluate import EvalResult, evaluate, load_recommender, markdown_table, save_result
from tidrec.fit import BASELINE_ONLY, MODELS, FitConfig, fit
from tidrec.io import write_json, write_text
from tidrec.tokenize import TokenizeConfig, tokenize_run

CPU_FIT_MINUTES = 8.0
"""Training budget of the generative model under the CPU preset when --max-time is not given."""


@dataclass(frozen=True, kw_only=True)
class RunConfig(TokenizeConfig, FitConfig):
    """Every option of tokenize and fit; the run folder is --out."""

    run: Path = field(default=Path("."), init=False)
    """Set from --out."""
    model: str = field(default="tiger", init=False)
    """The generative model is always trained; see --baselines for the others."""
    baselines: tuple[str, ...] = ("pop",)
    """Baselines fitted and evaluated beside the generative model (none: pass 'none')."""
    max_time: float | None = None
    """Minutes of training for the generative model; None: 8 on the CPU preset, no cap on tiger."""
    exclude_history: bool = False
    """Remove already-seen items from every model's lists at evaluation."""
    eval_beam_size: int = 20
    """Beams for the generative model's test decoding (>= 20, the list length)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "run", self.out)
        TokenizeConfig.__post_init__(self)
        FitConfig.__post_init__(self)
        unknown = [b for b in self.baselines if b not in (*MODELS[1:], "none")]
        if unknown:
            expected = ", ".join(MODELS[1:])
            raise ConfigError(f"--baselines: unknown {', '.join(unknown)}; expected some of {expected}")
        if self.eval_beam_size < 20:
            raise ConfigError(f"--eval-beam-size must be >= 20, got {self.eval_beam_size}")

    def fit_config(self, model: str) -> FitConfig:
        """The FitConfig of one model of this run."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(FitConfig) if f.init}
        values.update(run=self.out, model=model)
        if model == "tiger":  # the baselines' own options do not reach the generative model
            values.update({name: None for name in BASELINE_ONLY})
        if model == "tiger" and self.max_time is None and self.resolved_preset == "cpu":
            values["max_time"] = CPU_FIT_MINUTES
        return FitConfig(**values)

    def tokenize_config(self) -> TokenizeConfig:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(TokenizeConfig) if f.init}
        return TokenizeConfig(**values)


def run_all(config: RunConfig) -> list[EvalResult]:
    """Tokenize, train the generative model and the baselines, evaluate all; print and save a table."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    tokenize_run(config.tokenize_config())
    seconds["tokenize"] = time.perf_counter() - start
    models = ["tiger", *(b for b in config.baselines if b != "none")]
    for model in models:
        begin = time.perf_counter()
        fit(config.fit_config(model))
        seconds[f"fit {model}"] = time.perf_counter() - begin
    dataset = load_dataset(config.out / "data")
    results = []
    for model in models:
        begin = time.perf_counter()
        recommender = load_recommender(
            config.out, model, dataset, beam_size=config.eval_beam_size, device=config.device
        )
        result = evaluate(
            recommender,
            dataset,
            split="test",
            k=20,
            exclude_history=config.exclude_history,
            batch_size=config.eval_batch_size,
            model_name=model,
        )
        save_result(result, config.out / "models" / model / "eval")
        results.append(result)
        seconds[f"evaluate {model}"] = time.perf_counter() - begin
    seconds["total"] = time.perf_counter() - start
    table = markdown_table(results)
    write_text(config.out / "results.md", table)
    write_json(
        config.out / "results.json",
        {"results": [r.to_json() for r in results], "seconds": {k: round(v, 1) for k, v in seconds.items()}},
    )
    print("\n" + table)
    print("\n".join(f"{stage:<20} {value / 60:6.1f} min" for stage, value in seconds.items()))
    print(f"wrote {config.out / 'results.md'} and results.json")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        RunConfig,
        run_all,
        argv,
        prog="python -m tidrec.run",
        description="End to end: data, semantic IDs, the generative model and baselines, evaluation.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
