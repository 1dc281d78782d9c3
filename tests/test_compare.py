"""``python -m tidrec.compare``: --help, bad options, and a tiny end-to-end run on a files dataset."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tidrec.compare import main, markdown

sys.path.insert(0, str(Path(__file__).parent / "baselines"))
from baseline_fixtures import cycle_embeddings, seed_embedding_cache, successor_dataset


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--models" in out and "--exclude-history" in out and "--dataset" in out


def test_unknown_model_is_one_line_error(tmp_path, capsys):
    assert main(["--run", str(tmp_path), "--models", "pop", "gru4rec"]) == 2
    err = capsys.readouterr().err
    assert "gru4rec" in err and "Traceback" not in err


def _write_files(folder: Path) -> tuple[Path, Path]:
    source = successor_dataset(num_users=80)
    users = np.repeat(source.user_ids, source.lengths)
    inter, items = folder / "interactions.csv", folder / "items.csv"
    rows = zip(users, source.item_ids[source.items], source.timestamps, strict=True)
    inter.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    texts = zip(source.item_ids, source.item_texts, strict=True)
    items.write_text("item_id,title\n" + "".join(f"{i},{t}\n" for i, t in texts))
    return inter, items


def test_tiny_end_to_end_run(tmp_path, capsys):
    import torch

    from tidrec.data.prepare import DataConfig, prepare_dataset

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    inter, items = _write_files(tmp_path)
    run = tmp_path / "run"
    data_args = ["--dataset", "files", "--interactions", str(inter), "--items", str(items)]
    dataset = prepare_dataset(DataConfig(dataset="files", interactions=inter, items=items), run / "data")
    embeddings = cycle_embeddings(successor_dataset(num_users=80))
    order = [int(i[1:]) for i in dataset.item_ids]  # the data layer may re-index items
    seed_embedding_cache(run, dataset, embeddings[order])
    args = ["--run", str(run), *data_args, "--models", "pop", "sasrec", "llmseqsim"]
    args += ["--max-epochs", "2", "--max-len", "12", "--progress", "false", "--device", "cpu"]
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "| sasrec |" in out and "Serendipity@10" in out
    result = json.loads((run / "results.json").read_text())
    assert [r["model"] for r in result["results"]] == ["pop", "sasrec", "llmseqsim"]
    assert result["exclude_history"] is True and result["machine"]
    by_model = {r["model"]: r for r in result["results"]}
    assert by_model["llmseqsim"]["recall@10"] > by_model["pop"]["recall@10"]
    assert by_model["sasrec"]["train_seconds"] > 0
    assert (run / "results.md").is_file() and (run / "results.png").is_file()
    # the first model against each other one, paired on the same users
    paired = result["paired"]
    assert paired["model"] == "pop" and list(paired["against"]) == ["sasrec", "llmseqsim"]
    for other, d in paired["against"].items():
        assert d["ndcg@10_diff"] == pytest.approx(by_model["pop"]["ndcg@10"] - by_model[other]["ndcg@10"])
    assert "pop minus each other model, NDCG@10 on the same users" in (run / "results.md").read_text()
    # a second run reuses every trained artifact
    mtime = (run / "models" / "sasrec" / "best.ckpt").stat().st_mtime
    assert main([*args, "--models", "sasrec"]) == 0
    assert (run / "models" / "sasrec" / "best.ckpt").stat().st_mtime == mtime


def test_markdown_table_formats_times():
    row = {"model": "m", "recall@10": 0.5, "ndcg@10": 0.25, "coverage@10": 0.1, "serendipity@10": 0.0}
    text = markdown([{**row, "novelty@10": 9.0, "train_seconds": 150.0}], k=10, header="h")
    assert "| m | 0.5000 | 0.2500 | 0.1000 | 0.0000 | 9.0000 | 2.5 min |" in text
    text = markdown([{**row, "novelty@10": 9.0, "ndcg@10_se": 0.0123}], k=10, header="h")
    assert "| 0.2500 ± 0.0123 |" in text


def test_standard_errors_match_a_hand_computed_case():
    from tidrec.metrics import standard_errors

    ranked = np.array([[5, 1, 2], [1, 2, 3], [4, 4, 4], [9, 8, 7]])
    targets = np.array([5, 2, 0, 0])  # ranks 0 and 1, then two misses
    errors = standard_errors(ranked, targets, k=3)
    assert errors["recall@3_se"] == pytest.approx(np.std([1, 1, 0, 0], ddof=1) / 2)
    assert errors["ndcg@3_se"] == pytest.approx(np.std([1.0, 1 / np.log2(3), 0, 0], ddof=1) / 2)


def test_a_model_registered_from_outside_joins_the_comparison(tmp_path, capsys):
    """A new model is one registration: no edit to tidrec's own files."""
    from test_run import write_files

    from tidrec import models

    class Last:
        """Recommends the catalogue in reverse item order: a model nobody would pick, but a model."""

        def __init__(self, num_items: int) -> None:
            self.num_items = num_items

        def recommend(self, split, *, k, exclude_history):
            ranked = np.full(k, -1)
            ranked[: min(k, self.num_items)] = np.arange(self.num_items)[::-1][:k]
            return np.tile(ranked, (len(split), 1))

    def fit(config, dataset):
        path = config.run / "models" / config.model / "last.json"
        path.write_text("{}")
        return path

    spec = models.ModelSpec(
        name="last-items",
        summary="test model",
        preset=lambda config: {},
        fit=fit,
        load=lambda request: Last(request.dataset.num_items),
        artifact="last.json",
        trained=False,
    )
    models.register(spec)
    try:
        write_files(tmp_path)
        data = ["--dataset", "files", "--interactions", str(tmp_path / "interactions.csv")]
        data += ["--items", str(tmp_path / "items.csv")]
        argv = ["--run", str(tmp_path / "run"), *data, "--models", "pop", "last-items", "--progress", "false"]
        assert main(argv) == 0
        assert "| last-items |" in capsys.readouterr().out
        assert "last-items" in models.names() and "pop" in models.names()
    finally:
        models.unregister("last-items")
