"""RQ-VAE (TIGER): an MLP autoencoder whose latent is residual-quantised into L levels of V codes.

Training follows Rajput et al. 2023 (TIGER) and Lee et al. 2022 (RQ-VAE): straight-through
gradients through the quantiser, loss = reconstruction + sum over levels of
``||sg[r_l] - e_l||^2 + beta * ||r_l - sg[e_l]||^2``, each level's codebook initialised by k-means
on the initial latents' residuals, and codes left unused for an epoch re-seeded from current
residuals (the usual cure for codebook collapse).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from tidrec.device import resolve_device
from tidrec.errors import ConfigError
from tokenizer.base import as_float_matrix, config_from_dict, save_checkpoint
from tokenizer.quantize import ENCODE_CHUNK, kmeans, nearest_code


@dataclass(frozen=True, kw_only=True)
class RqVaeConfig:
    """RQ-VAE architecture and training settings (defaults: TIGER's 3 x 256 codes, 32-d latent)."""

    levels: int = 3
    """Number of code levels (before the collision code)."""
    codebook_size: int = 256
    """Codes per level."""
    hidden_dims: tuple[int, ...] = (512, 256, 128)
    """Encoder MLP hidden widths (the decoder mirrors them)."""
    latent_dim: int = 32
    """Width of the quantised latent."""
    beta: float = 0.25
    """Commitment weight: pulls encoder outputs towards their codewords."""
    epochs: int = 300
    """Passes over the item embeddings."""
    batch_size: int = 512
    """Items per optimisation step."""
    lr: float = 1e-3
    """AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW weight decay (not applied to codebooks)."""
    kmeans_iterations: int = 25
    """Lloyd iterations of each level's k-means initialisation."""
    reseed_dead_codes: bool = True
    """After each epoch but the last, move codes no item used to random current residuals."""

    def __post_init__(self) -> None:
        checks = {
            "levels": self.levels >= 1,
            "codebook_size": self.codebook_size >= 2,
            "latent_dim": self.latent_dim >= 1,
            "hidden_dims": all(h >= 1 for h in self.hidden_dims),
            "beta": self.beta >= 0,
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "kmeans_iterations": self.kmeans_iterations >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                f"RQ-VAE option(s) out of range: {', '.join(f'{n}={getattr(self, n)}' for n in bad)}"
            )


class RqVaeOutput(NamedTuple):
    reconstruction: torch.Tensor
    """(B, D) decoded standardised input."""
    codes: torch.Tensor
    """(B, L) int64."""
    quantisation_loss: torch.Tensor
    """Scalar: codebook + beta * commitment, summed over levels."""


def _mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(width_in, width_out))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RqVae(nn.Module):
    """Encoder -> residual quantiser -> decoder, on inputs standardised by stored mean and scale."""

    def __init__(self, input_dim: int, config: RqVaeConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = _mlp([input_dim, *config.hidden_dims, config.latent_dim])
        self.decoder = _mlp([config.latent_dim, *reversed(config.hidden_dims), input_dim])
        self.codebooks = nn.Parameter(torch.zeros(config.levels, config.codebook_size, config.latent_dim))
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("scale", torch.ones(()))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale

    def quantise(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Residual quantisation with losses.

        Args:
            latent: (B, Z) encoder output.

        Returns:
            codes (B, L), quantised latent (B, Z) with straight-through gradient, quantisation loss.
        """
        residual = latent
        quantised = torch.zeros_like(latent)
        loss = latent.new_zeros(())
        codes = []
        for book in self.codebooks:  # (V, Z) per level
            code = nearest_code(residual.detach(), book.detach())  # (B,)
            codeword = book[code]  # (B, Z)
            loss = loss + F.mse_loss(codeword, residual.detach())
            loss = loss + self.config.beta * F.mse_loss(residual, codeword.detach())
            quantised = quantised + codeword
            residual = residual - codeword.detach()
            codes.append(code)
        straight_through = latent + (quantised - latent).detach()
        return torch.stack(codes, dim=1), straight_through, loss

    def forward(self, x: torch.Tensor) -> RqVaeOutput:
        latent = self.encoder(self.standardise(x))  # (B, Z)
        codes, quantised, loss = self.quantise(latent)
        return RqVaeOutput(self.decoder(quantised), codes, loss)

    @torch.no_grad()
    def level_residuals(self, x: torch.Tensor) -> torch.Tensor:
        """(L, B, Z): the residual each level quantises, under the current encoder and codebooks."""
        residual = self.encoder(self.standardise(x))
        out = []
        for book in self.codebooks:
            out.append(residual)
            residual = residual - book[nearest_code(residual, book)]
        return torch.stack(out)


class RqVaeTokenizer:
    """Fits an :class:`RqVae` on item embeddings and encodes them into code tuples."""

    kind = "rqvae"

    def __init__(self, config: RqVaeConfig, *, device: str = "auto", progress: bool = True) -> None:
        self.config = config
        self.progress = progress
        self.device = resolve_device(device)
        self.model: RqVae | None = None
        self.history: list[dict[str, float]] = []

    @property
    def level_sizes(self) -> tuple[int, ...]:
        return (self.config.codebook_size,) * self.config.levels

    def fit(self, embeddings: np.ndarray, *, seed: int) -> dict[str, float]:
        """Train from scratch; deterministic for a seed on CPU (global RNG state is left untouched).

        Returns:
            Final epoch's mean loss, reconstruction loss and the number of dead codes re-seeded.
        """
        cfg = self.config
        x = torch.from_numpy(as_float_matrix(embeddings)).to(self.device)  # (N, D)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = RqVae(x.shape[1], cfg).to(self.device)
        model.mean.copy_(x.mean(0))
        model.scale.copy_((x - model.mean).std().clamp_min(1e-8))
        self._init_codebooks(model, x, seed=seed)
        decay = [p for name, p in model.named_parameters() if name != "codebooks"]
        optimiser = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": cfg.weight_decay},
                {"params": [model.codebooks], "weight_decay": 0.0},
            ],
            lr=cfg.lr,
        )
        generator = torch.Generator().manual_seed(seed)
        self.history, reseeded = [], 0
        bar = tqdm(range(cfg.epochs), desc="RQ-VAE", unit="epoch", disable=not self.progress or None)
        for epoch in bar:
            model.train()
            counts = torch.zeros(cfg.levels, cfg.codebook_size, dtype=torch.int64, device=self.device)
            totals = torch.zeros(2, device=self.device)  # loss, reconstruction (summed over batches)
            order = torch.randperm(len(x), generator=generator).to(self.device)
            batches = order.split(cfg.batch_size)
            for rows in batches:
                batch = x[rows]  # (B, D)
                out = model(batch)
                reconstruction = F.mse_loss(out.reconstruction, model.standardise(batch))
                loss = reconstruction + out.quantisation_loss
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                totals += torch.stack([loss.detach(), reconstruction.detach()])
                for level in range(cfg.levels):
                    counts[level] += torch.bincount(out.codes[:, level], minlength=cfg.codebook_size)
            usage = (counts > 0).float().mean(1)  # (L,)
            if cfg.reseed_dead_codes and epoch < cfg.epochs - 1:
                reseeded += self._reseed(model, x, counts == 0, generator)
            mean_loss, mean_reconstruction = (totals / len(batches)).tolist()
            self.history.append(
                {"loss": mean_loss, "reconstruction": mean_reconstruction, "min_usage": usage.min().item()}
            )
            bar.set_postfix(loss=f"{mean_loss:.4f}", usage=" ".join(f"{u:.2f}" for u in usage.tolist()))
        model.eval()
        self.model = model
        last = self.history[-1]
        return {
            "final_loss": last["loss"],
            "final_reconstruction": last["reconstruction"],
            "reseeded_codes": reseeded,
        }

    @torch.no_grad()
    def _init_codebooks(self, model: RqVae, x: torch.Tensor, *, seed: int) -> None:
        """k-means on the initial latents, then on each level's residuals."""
        residual = self._map_chunks(lambda chunk: model.encoder(model.standardise(chunk)), x)  # (N, Z)
        for level in range(self.config.levels):
            centroids = torch.from_numpy(
                kmeans(
                    residual.cpu().numpy(),
                    self.config.codebook_size,
                    seed=seed + level,
                    iterations=self.config.kmeans_iterations,
                )
            ).to(self.device)  # (V, Z)
            model.codebooks[level].copy_(centroids)
            residual = residual - centroids[nearest_code(residual, centroids)]

    @torch.no_grad()
    def _reseed(self, model: RqVae, x: torch.Tensor, dead: torch.Tensor, generator: torch.Generator) -> int:
        """Move each dead code (``dead``: (L, V) bool) onto a random item's current residual at its level."""
        if not dead.any():
            return 0
        sample = torch.randperm(len(x), generator=generator)[: max(self.config.batch_size, int(dead.sum()))]
        residuals = model.level_residuals(x[sample.to(self.device)])  # (L, S, Z)
        for level in range(self.config.levels):
            codes = dead[level].nonzero().squeeze(1)  # (K,)
            if len(codes):
                picks = torch.randint(0, residuals.shape[1], (len(codes),), generator=generator).to(
                    self.device
                )
                model.codebooks[level, codes] = residuals[level, picks]
        return int(dead.sum())

    def _map_chunks(self, fn: Any, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([fn(chunk) for chunk in x.split(ENCODE_CHUNK)])

    def _require_model(self) -> RqVae:
        if self.model is None:
            raise RuntimeError("tokenizer is not fitted; call fit() or load_tokenizer() first")
        return self.model

    @torch.no_grad()
    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        model = self._require_model()
        x = torch.from_numpy(as_float_matrix(embeddings, dim=model.mean.shape[0]))
        codes = self._map_chunks(
            lambda chunk: model.quantise(model.encoder(model.standardise(chunk.to(self.device))))[0].cpu(), x
        )  # (N, L)
        return codes.numpy().astype(np.int64)

    @torch.no_grad()
    def reconstruct(self, embeddings: np.ndarray) -> np.ndarray:
        model = self._require_model()
        x = torch.from_numpy(as_float_matrix(embeddings, dim=model.mean.shape[0]))
        decoded = self._map_chunks(
            lambda chunk: model(chunk.to(self.device)).reconstruction.cpu(), x
        )  # (N, D)
        return (decoded * model.scale.cpu() + model.mean.cpu()).numpy()

    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> None:
        model = self._require_model()
        state = {
            "input_dim": int(model.mean.shape[0]),
            "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        }
        save_checkpoint(path, kind=self.kind, config=self.config, state=state, extra=extra or {})

    @classmethod
    def from_checkpoint(
        cls, payload: dict[str, Any], *, source: str | Path, device: str = "auto"
    ) -> RqVaeTokenizer:
        config = config_from_dict(RqVaeConfig, payload["config"], source=source)
        tokenizer = cls(config, device=device)
        model = RqVae(payload["state"]["input_dim"], config)
        model.load_state_dict(payload["state"]["weights"])
        tokenizer.model = model.to(tokenizer.device).eval()
        return tokenizer
