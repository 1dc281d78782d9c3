"""SASRec / BERT4Rec and their LLM2 twins: train through fit_baseline, reload, beat popularity."""

import json

import numpy as np
import pytest
import torch
from baseline_fixtures import cycle_embeddings, hit_rate, seed_embedding_cache, tiny_fit_config

from tidrec.baselines import fit_baseline, load_recommender
from tidrec.baselines.bert4rec import BERT4Rec, BERT4RecConfig
from tidrec.baselines.popularity import PopularityRecommender
from tidrec.baselines.presets import sequence_preset
from tidrec.baselines.sasrec import SASRec, SASRecConfig
from tidrec.baselines.sequential import ndcg_recall_at
from tidrec.errors import ConfigError, InputError


@pytest.mark.parametrize("model", ["sasrec", "sasrec-bce", "bert4rec", "llm2sasrec", "llm2bert4rec"])
def test_trains_and_beats_popularity_on_ordered_data(successor, tmp_path, model):
    seed_embedding_cache(tmp_path, successor, cycle_embeddings(successor, dim=40))
    out = tmp_path / "models" / model
    width = 16 if model.startswith("llm2") else 32  # PCA width is at most the 24 items
    best = fit_baseline(tiny_fit_config(tmp_path, model, d_model=width), successor, out)
    assert best == out / "best.ckpt" and best.is_file()
    assert (out / "metrics.csv").is_file() and (out / "curves.png").is_file()
    assert "train/lr" in (out / "metrics.csv").read_text().splitlines()[0]
    info = json.loads((out / "train_info.json").read_text())
    assert info["train_seconds"] > 0 and info["best_val_ndcg10"] > 0.5

    test = successor.split("test")
    recommender = load_recommender(out, successor)
    ranked = recommender.recommend(test, k=10, exclude_history=True)
    assert ranked.shape == (len(test), 10)
    assert not np.isin(ranked[0], test.histories[0]).any()
    pop = PopularityRecommender.fit(successor).recommend(test, k=10, exclude_history=True)
    assert hit_rate(ranked, test.targets) >= 0.95 > hit_rate(pop, test.targets) + 0.2
    assert hit_rate(ranked, test.targets, k=1) > 0.6  # the successor is learned, not just a top-10 guess


def test_checkpoint_refuses_another_dataset(successor, tmp_path):
    from baseline_fixtures import successor_dataset

    out = tmp_path / "models" / "sasrec"
    fit_baseline(tiny_fit_config(tmp_path, "sasrec", max_epochs=1), successor, out)
    with pytest.raises(InputError, match="trained on dataset"):
        load_recommender(out / "best.ckpt", successor_dataset(seed=1))


def test_sasrec_is_causal_and_ignores_padding():
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(num_items=10, max_len=6, d_model=16, num_heads=2, dropout=0.0)).eval()
    tokens = torch.tensor([[0, 0, 3, 4, 5, 6]])
    changed = torch.tensor([[0, 0, 3, 4, 5, 9]])
    with torch.no_grad():
        hidden, hidden_changed = model(tokens), model(changed)
        assert torch.allclose(hidden[:, :5], hidden_changed[:, :5], atol=1e-6)  # future is invisible
        assert not torch.allclose(hidden[:, 5], hidden_changed[:, 5])
        # the same history with more left padding scores the same next item
        shorter = model.next_item_scores(torch.tensor([[0, 3, 4, 5, 6]]))
        assert torch.allclose(model.next_item_scores(tokens), shorter, atol=1e-5)


def test_bert4rec_inference_appends_mask_and_truncates():
    model = BERT4Rec(BERT4RecConfig(num_items=10, max_len=4, d_model=8, num_heads=2))
    tokens = model.inference_tokens([np.array([1, 2, 3, 4, 5]), np.array([7])])
    mask = model.mask_token
    assert tokens.tolist() == [[4, 5, 6, mask], [0, 0, 8, mask]]
    assert model.next_item_scores(tokens).shape == (2, 10)


def test_ndcg_recall_golden_values():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3], [0.4, 0.3, 0.2, 0.1], [1.0, float("-inf"), 0.0, 0.5]])
    ndcg, recall = ndcg_recall_at(scores, torch.tensor([2, 3, 1]), k=3)
    # target ranks: 1 (behind item 1), 3 (outside top-3), excluded (-inf)
    assert torch.allclose(ndcg, torch.tensor([1 / np.log2(3), 0.0, 0.0], dtype=torch.float))
    assert recall.tolist() == [1.0, 0.0, 0.0]


def resolve_preset(name, config=None):
    """The SequencePreset of ``name`` after the registry's merge of its preset and ``config``."""
    from tidrec.fit import FitConfig, resolve_config

    config = config if config is not None else FitConfig(run=".", model=name)
    return sequence_preset(name, resolve_config(config))


def test_presets_and_overrides(tmp_path):
    preset = resolve_preset("sasrec-bce", tiny_fit_config(tmp_path, "sasrec-bce", d_model=48, num_heads=1))
    assert (preset.architecture, preset.loss, preset.d_model, preset.max_len) == ("sasrec", "bce", 48, 12)
    default = resolve_preset("llm2bert4rec", tiny_fit_config(tmp_path, "llm2bert4rec", max_len=None))
    assert default.text_init and default.max_len == 200 and default.architecture == "bert4rec"
    with pytest.raises(ConfigError, match="SASRec only"):
        resolve_preset("bert4rec", tiny_fit_config(tmp_path, "bert4rec", loss="bce"))


def test_resume_adds_to_the_recorded_training_time(successor, tmp_path):
    out = tmp_path / "models" / "sasrec"
    fit_baseline(tiny_fit_config(tmp_path, "sasrec", max_epochs=1), successor, out)
    first = json.loads((out / "train_info.json").read_text())["train_seconds"]
    fit_baseline(tiny_fit_config(tmp_path, "sasrec", max_epochs=2, resume=True), successor, out)
    info = json.loads((out / "train_info.json").read_text())
    assert info["epochs"] == 2 and info["train_seconds"] > first


def logged_steps(metrics_csv):
    """(epoch, step) of every row of a metrics.csv, in order."""
    rows = metrics_csv.read_text().splitlines()[1:]
    return [tuple(int(x) for x in row.split(",")[:2]) for row in rows]


def test_a_run_stopped_mid_epoch_resumes_without_duplicate_rows(successor, tmp_path, monkeypatch):
    import signal

    from tidrec.baselines.sequential import SequenceModule

    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    config = {"max_epochs": 3, "batch_size": 4}  # 30 steps an epoch, a row every 10
    fit_baseline(tiny_fit_config(tmp_path, "sasrec", **config), successor, straight)
    # Validation is perfect from the first epoch on, so best.ckpt stays there; last.ckpt must not.
    assert torch.load(straight / "best.ckpt", weights_only=True)["epoch"] == 0
    assert torch.load(straight / "last.ckpt", weights_only=True)["epoch"] == 2

    def stop_mid_epoch(self, batch, batch_idx):
        if self.current_epoch == 1 and batch_idx == 12:  # after the row of step 39
            raise KeyboardInterrupt

    handler = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(SequenceModule, "on_train_batch_start", stop_mid_epoch, raising=False)
    try:
        with pytest.raises(SystemExit):  # Lightning shuts down gracefully, then exits
            fit_baseline(tiny_fit_config(tmp_path, "sasrec", **config), successor, stopped)
    finally:
        signal.signal(signal.SIGINT, handler)
    monkeypatch.undo()
    assert (1, 39) in logged_steps(stopped / "metrics.csv")  # logged, then redone after the resume

    fit_baseline(tiny_fit_config(tmp_path, "sasrec", resume=True, **config), successor, stopped)
    assert logged_steps(stopped / "metrics.csv") == logged_steps(straight / "metrics.csv")


def test_learning_rate_is_cut_only_when_validation_ndcg_stalls():
    from tidrec.baselines.sequential import SequenceModule

    config = resolve_preset("sasrec").model_config(num_items=10)
    module = SequenceModule(
        architecture="sasrec",
        config=config,
        model_name="sasrec",
        dataset_hash="h",
        lr=1e-3,
        lr_plateau_patience=1,
        lr_plateau_factor=0.5,
    )
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    assert setup["lr_scheduler"]["monitor"] == "val/ndcg@10"
    for ndcg in (0.10, 0.12, 0.14, 0.16):  # rising: the rate stays
        scheduler.step(ndcg)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    for ndcg in (0.15, 0.15):  # two validations below the best with patience 1: one cut
        scheduler.step(ndcg)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    constant = SequenceModule(architecture="sasrec", config=config, model_name="s", dataset_hash="h")
    assert isinstance(constant.configure_optimizers(), torch.optim.AdamW)
    # BERT4Rec's cloze objective is flat for its first epochs, so its presets keep a constant rate
    assert resolve_preset("bert4rec").lr_plateau_patience is None
    assert resolve_preset("llm2sasrec").lr_plateau_patience == 2
    from tidrec.fit import FitConfig

    def flags(**given):
        return resolve_preset("sasrec", FitConfig(run=".", model="sasrec", **given))

    assert flags(lr_plateau_patience=0).lr_plateau_patience is None  # 0 on the command line: constant
    tuned = flags(lr_plateau_patience=5, lr_plateau_factor=0.5)
    assert (tuned.lr_plateau_patience, tuned.lr_plateau_factor) == (5, 0.5)
    with pytest.raises(ConfigError, match="--lr-plateau-factor"):
        FitConfig(run=".", model="sasrec", lr_plateau_factor=1.5)


def test_random_windows_cover_old_items_of_long_histories():
    from tidrec.baselines.sequential import WindowData

    long, short = np.arange(20), np.arange(100, 104)
    last = WindowData([long, short], width=5, min_items=2)
    assert last[0].tolist() == [16, 17, 18, 19, 20]  # tokens are item_idx + 1
    torch.manual_seed(0)
    data = WindowData([long, short], width=5, min_items=2, windows="random")
    windows = [data[0].tolist() for _ in range(200)]
    for window in windows:  # always a full, contiguous stretch of the history
        assert len(window) == 5 and np.all(np.diff(window) == 1) and 1 <= window[0] <= 16
    assert {w[0] for w in windows} == set(range(1, 17))  # every start, the oldest items included
    assert data[1].tolist() == [0, 101, 102, 103, 104]  # a short history is used whole, as before
    with pytest.raises(ValueError, match="windows"):
        WindowData([long], width=5, min_items=2, windows="first")
