"""Shared test settings: CPU first, few threads (CI has 2 cores), deterministic."""

import os

# libgomp spin-waits for busy cores by default; on a shared 2-core machine that makes two
# threads 10-100x slower than one. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import torch

torch.set_num_threads(2)
