"""User errors end every stage in one line and exit 2: bad options, unusable output folders, corrupt files.

Each stage's ``main`` runs in-process. A bad option must be refused by the config's validation,
before any work and whichever models are chosen, with a message naming the flag; a corrupt
artifact must be refused by its reader, naming the file.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from tiger_fixtures import make_run

from tidrec import beam, compare, evaluate, fit, pipeline, run, tokenize
from tidrec.data import __main__ as data_cli
from tidrec.errors import InputError

STAGES = {
    "fit": fit.main,
    "evaluate": evaluate.main,
    "compare": compare.main,
    "tokenize": tokenize.main,
    "run": run.main,
    "data": data_cli.main,
    "beam": beam.main,
}

TINY_BEAM = ["--catalogue", "50", "--level-sizes", "4", "4", "--batch-sizes", "1", "--repeats", "1"]
TINY_BEAM += ["--warmup", "0", "--hf-batch", "0", "--memory-items", "0", "--exact-users", "0"]


def base_argv(stage: str, folder: Path) -> list[str]:
    """Arguments that let ``stage`` start: a folder, and data files that do not exist.

    With a bad option refused up front the stage never reaches them; without, it would fail on
    them with a message that does not name the option.
    """
    missing = [
        "--dataset",
        "files",
        "--interactions",
        str(folder / "no.csv"),
        "--items",
        str(folder / "no.csv"),
    ]
    return {
        "fit": ["--run", str(folder)],
        "evaluate": ["--run", str(folder)],
        "compare": ["--run", str(folder), *missing],
        "tokenize": ["--out", str(folder), *missing],
        "run": ["--out", str(folder), *missing],
        "data": ["--out", str(folder), *missing],
        "beam": [*TINY_BEAM, "--out", str(folder)],
    }[stage]


def one_line_error(capsys: pytest.CaptureFixture[str], stage: str, code: int) -> str:
    """The stage's single stderr line, after checking the exit code and the line's form."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"python -m tidrec.{stage}: error: "), err
    return lines[0]


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without CUDA, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


BAD_OPTIONS = [
    # (stage, flags, text the line must contain)
    ("fit", ["--device", "cuda"], "--device cuda: no CUDA GPU found"),
    ("fit", ["--precision", "bogus"], "--precision 'bogus' is not one of"),
    ("fit", ["--strategy", "bogus"], "--strategy 'bogus'"),
    ("fit", ["--devices", "0"], "--devices must be auto or a count >= 1"),
    ("fit", ["--max-time", "nan"], "--max-time must be a finite number > 0"),
    ("fit", ["--max-time", "inf"], "--max-time must be a finite number > 0"),
    ("fit", ["--max-time", "-3"], "--max-time must be a finite number > 0"),
    ("fit", ["--max-time", "0"], "--max-time must be a finite number > 0"),
    ("fit", ["--lr", "inf"], "--lr must be a finite number > 0"),
    ("fit", ["--lr", "nan"], "--lr must be a finite number > 0"),
    ("fit", ["--lr", "0"], "--lr must be a finite number > 0"),
    ("fit", ["--weight-decay", "nan"], "--weight-decay must be a finite number >= 0"),
    ("fit", ["--weight-decay", "inf"], "--weight-decay must be"),
    ("fit", ["--warmup", "nan"], "--warmup must be a finite number >= 0 and < 1"),
    ("fit", ["--gradient-clip", "nan"], "--gradient-clip must be a finite number >= 0"),
    ("fit", ["--gradient-clip", "inf"], "--gradient-clip must be"),
    ("fit", ["--dropout", "2"], "--dropout must be a finite number >= 0 and < 1"),
    ("fit", ["--dropout", "nan"], "--dropout must be"),
    ("fit", ["--model", "sasrec", "--dropout", "-0.5"], "--dropout must be"),
    ("fit", ["--eval-batch-size", "0"], "--eval-batch-size must be an integer >= 1"),
    ("fit", ["--lr-plateau-factor", "nan"], "--lr-plateau-factor must be a finite number > 0 and < 1"),
    ("fit", ["--seed", "-1"], "--seed must be an integer >= 0"),
    ("evaluate", ["--beam-size", "0"], "--beam-size must be >= --k (20)"),
    ("evaluate", ["--beam-size", "-5"], "--beam-size must be >= --k (20)"),
    ("evaluate", ["--k", "30", "--beam-size", "20"], "--beam-size must be >= --k (30)"),
    ("evaluate", ["--device", "cuda"], "--device cuda: no CUDA GPU found"),
    ("compare", ["--max-time", "-1"], "--max-time must be a finite number > 0"),
    ("compare", ["--max-time", "nan"], "--max-time must be"),
    ("compare", ["--batch-size", "0"], "--batch-size must be an integer >= 1"),
    ("compare", ["--max-epochs", "0"], "--max-epochs must be an integer >= 1"),
    ("compare", ["--patience", "0"], "--patience must be an integer >= 1"),
    ("compare", ["--max-len", "0"], "--max-len must be an integer >= 1"),
    ("compare", ["--seed", "-1"], "--seed must be"),
    ("compare", ["--device", "cuda"], "--device cuda: no CUDA GPU found"),
    ("tokenize", ["--rqvae-lr", "inf"], "--rqvae-lr must be a finite number > 0"),
    ("tokenize", ["--tokenizer", "rkmeans", "--rqvae-epochs", "0"], "--rqvae-epochs must be"),
    ("tokenize", ["--rqvae-beta", "nan"], "--rqvae-beta must be"),
    ("tokenize", ["--codebook-size", "1"], "--codebook-size must be an integer >= 2"),
    ("tokenize", ["--levels", "0"], "--levels must be"),
    ("tokenize", ["--embedding-batch-size", "0"], "--embedding-batch-size must be"),
    ("tokenize", ["--device", "cuda"], "--device cuda: no CUDA GPU found"),
    ("run", ["--max-time", "inf"], "--max-time must be"),
    ("run", ["--eval-batch-size", "0"], "--eval-batch-size must be"),
    ("run", ["--rqvae-lr", "nan"], "--rqvae-lr must be"),
    ("run", ["--device", "cuda"], "--device cuda: no CUDA GPU found"),
    ("beam", ["--beam-size", "0"], "--beam-size must be an integer >= 1"),
    ("beam", ["--budget-ms", "nan"], "--budget-ms must be a finite number > 0"),
    ("beam", ["--budget-ms", "inf"], "--budget-ms must be"),
    ("beam", ["--repeats", "0"], "--repeats must be"),
    ("beam", ["--hf-batch", "2", "--hf-repeats", "0"], "--hf-repeats must be"),
    ("beam", ["--batch-sizes", "4", "0"], "--batch-sizes must be"),
    ("beam", ["--history", "0"], "--history must be"),
    ("beam", ["--memory-items", "-1"], "--memory-items must be"),
    ("beam", ["--device", "cuda"], "--device cuda: no CUDA GPU found"),
]


@pytest.mark.parametrize(("stage", "flags", "expected"), BAD_OPTIONS, ids=lambda v: str(v))
def test_a_bad_option_is_one_line_before_any_work(stage, flags, expected, tmp_path, capsys, no_gpu):
    folder = tmp_path / "out"
    code = STAGES[stage]([*base_argv(stage, folder), *flags])
    assert expected in one_line_error(capsys, stage, code)
    assert not folder.exists()  # refused before anything was written


# ----------------------------------------------------------------------------- output folders


@pytest.mark.parametrize("stage", ["tokenize", "run", "data", "beam", "compare"])
def test_an_output_folder_that_is_a_file_is_one_line(stage, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file, not a folder")
    flag = "--out"  # compare takes --run as another name of it
    assert f"{flag} {taken} is a file" in one_line_error(
        capsys, stage, STAGES[stage](base_argv(stage, taken))
    )
    below = taken / "run"
    line = one_line_error(capsys, stage, STAGES[stage](base_argv(stage, below)))
    assert f"{flag} {below} cannot be created: {taken} is a file" in line
    assert taken.read_text() == "a file, not a folder"


def unwritable_folder() -> tuple[Path, str]:
    """A folder nobody may create, and the OS's reason (tests run as root: permission bits stop nothing)."""
    for candidate in (Path("/sys/tidrec-test"), Path("/proc/tidrec-test")):
        try:
            candidate.mkdir()
        except PermissionError as error:
            return candidate, error.strerror
        except OSError:
            continue
        candidate.rmdir()
    pytest.skip("no folder here that mkdir refuses with a permission error")


def test_an_output_folder_that_cannot_be_created_is_one_line(tmp_path, capsys):
    folder, reason = unwritable_folder()
    # beam creates --out before minutes of timing, so the error comes first
    line = one_line_error(capsys, "beam", beam.main([*TINY_BEAM, "--out", str(folder)]))
    assert line.endswith(f"--out {folder}: cannot create or write ({reason})")
    # data writes nothing until the dataset is built; the error is the OS's own, in one line
    (tmp_path / "inter.csv").write_text("user_id,item_id,timestamp\nu,a,0\nu,b,1\nu,c,2\n")
    (tmp_path / "items.csv").write_text("item_id,title\na,A\nb,B\nc,C\n")
    argv = ["--dataset", "files", "--interactions", str(tmp_path / "inter.csv")]
    line = one_line_error(
        capsys, "data", data_cli.main([*argv, "--items", str(tmp_path / "items.csv"), "--out", str(folder)])
    )
    assert line.endswith(f"{folder}: {reason}")


# ----------------------------------------------------------------------------- corrupt artifacts


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


CORRUPTIONS = {
    "garbage": lambda path: path.write_bytes(b"\x00\xffnot what it should be"),
    "truncated": truncate,
}


@pytest.mark.parametrize("damage", sorted(CORRUPTIONS))
@pytest.mark.parametrize("name", ["interactions.parquet", "items.parquet", "users.parquet"])
def test_a_corrupt_data_file_is_one_line_naming_it(name, damage, tmp_path, capsys):
    make_run(tmp_path, num_users=6)
    CORRUPTIONS[damage](tmp_path / "data" / name)
    for stage in ("evaluate", "fit"):
        line = one_line_error(capsys, stage, STAGES[stage](["--run", str(tmp_path)]))
        assert f"{tmp_path / 'data' / name}: not a readable Parquet file" in line
        assert "prepare it again" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "manifest.json: not valid JSON"),
        (b"\xff", "manifest.json: not a UTF-8 text file"),
        (b"[1, 2]", "manifest.json: expected a JSON object, found a list"),
        (b'{"name": "cyclic"}', "manifest.json: lacks content_hash"),
    ],
)
def test_a_bad_manifest_is_one_line_naming_it(content, expected, tmp_path, capsys):
    make_run(tmp_path, num_users=6)
    (tmp_path / "data" / "manifest.json").write_bytes(content)
    assert expected in one_line_error(capsys, "evaluate", evaluate.main(["--run", str(tmp_path)]))


def test_a_data_file_without_its_columns_is_one_line(tmp_path, capsys):
    make_run(tmp_path, num_users=6)
    pl.DataFrame({"user": [0], "item": [1]}).write_parquet(tmp_path / "data" / "interactions.parquet")
    line = one_line_error(capsys, "fit", fit.main(["--run", str(tmp_path)]))
    assert "interactions.parquet: missing column(s) user_idx, item_idx, timestamp" in line


def test_data_files_that_do_not_fit_together_are_one_line(tmp_path, capsys):
    make_run(tmp_path, num_users=6)
    frame = pl.read_parquet(tmp_path / "data" / "interactions.parquet")
    frame.with_columns(pl.col("user_idx") - 100).write_parquet(tmp_path / "data" / "interactions.parquet")
    line = one_line_error(capsys, "fit", fit.main(["--run", str(tmp_path)]))
    assert "the Parquet files do not form a dataset" in line


@pytest.mark.parametrize("damage", sorted(CORRUPTIONS))
def test_a_corrupt_sid_table_is_one_line_through_fit(damage, tmp_path, capsys):
    make_run(tmp_path, num_users=6)
    sids = tmp_path / "tokenizer" / "sids.parquet"
    CORRUPTIONS[damage](sids)
    line = one_line_error(capsys, "fit", fit.main(["--run", str(tmp_path)]))
    assert f"{sids}: not a readable Parquet file" in line and "python -m tidrec.tokenize" in line


def test_a_corrupt_sid_table_is_one_line_through_beam(tmp_path, capsys):
    from tidrec.model import TigerModule, cpu_model

    _, table = make_run(tmp_path, num_users=6)
    module = TigerModule(cpu_model(), table)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    (tmp_path / "models" / "tiger").mkdir(parents=True)
    torch.save(checkpoint, tmp_path / "models" / "tiger" / "best.ckpt")
    truncate(tmp_path / "tokenizer" / "sids.parquet")
    argv = ["--checkpoint", str(tmp_path / "models" / "tiger" / "best.ckpt"), *TINY_BEAM]
    line = one_line_error(capsys, "beam", beam.main([*argv, "--out", str(tmp_path / "bench")]))
    assert "sids.parquet: not a readable Parquet file" in line


def write_sid_table(path: Path, metadata: bytes | None, **columns: list) -> None:
    table = pa.table(columns or {"item_idx": [0], "item_id": ["a"], "code_0": [0]})
    pq.write_table(
        table.replace_schema_metadata(None if metadata is None else {b"tidrec.sid_table": metadata}), path
    )


@pytest.mark.parametrize(
    ("metadata", "columns", "expected"),
    [
        (b"{bad json", {}, "(SID table metadata): not valid JSON"),
        (b"[3]", {}, "(SID table metadata): expected a JSON object"),
        (b'{"level_sizes": [3]}', {}, "SID table metadata lacks dataset_hash, content_hash"),
        (b'{"level_sizes": "3", "dataset_hash": "", "content_hash": ""}', {}, "has level_sizes '3'"),
        (
            b'{"level_sizes": [3, 4], "dataset_hash": "", "content_hash": ""}',
            {},
            "missing column(s) code_1",
        ),
        (
            b'{"level_sizes": [3], "dataset_hash": "", "content_hash": ""}',
            {"item_id": ["a"], "code_0": [7]},
            "not a valid SID table (codes out of range",
        ),
    ],
)
def test_a_bad_sid_table_is_an_input_error(metadata, columns, expected, tmp_path):
    from tokenizer.sid_table import SidTable

    path = tmp_path / "sids.parquet"
    write_sid_table(path, metadata, **columns)
    with pytest.raises(InputError) as caught:
        SidTable.load(path)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_sid_table_metadata_of_a_corrupt_file_is_an_input_error(tmp_path):
    from tokenizer.sid_table import SidTable

    path = tmp_path / "sids.parquet"
    path.write_bytes(b"PAR1 and nothing else")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        SidTable.metadata(path)
    write_sid_table(path, b"{bad")
    with pytest.raises(InputError, match="not valid JSON"):
        SidTable.metadata(path)


def test_an_incomplete_tokenizer_checkpoint_is_an_input_error(tmp_path):
    from tokenizer import load_tokenizer
    from tokenizer.base import CHECKPOINT_FORMAT

    path = tmp_path / "tokenizer.pt"
    torch.save({"format": CHECKPOINT_FORMAT}, path)
    with pytest.raises(InputError, match="lacks kind, config, state, extra"):
        load_tokenizer(path)
    payload = {"format": CHECKPOINT_FORMAT, "kind": "rkmeans", "config": {}, "state": {}, "extra": {}}
    torch.save(payload, path)
    with pytest.raises(InputError, match=r"does not match its rkmeans config \(KeyError"):
        load_tokenizer(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe garbage", "pop.json: not a UTF-8 text file"),
        (b"[1, 2, 3]", "pop.json: expected a JSON object, found a list"),
        (b'{"model": "pop"', "pop.json: not valid JSON"),
    ],
)
def test_a_corrupt_baseline_state_is_one_line(content, expected, tmp_path, capsys):
    make_run(tmp_path, num_users=6)
    (tmp_path / "models" / "pop").mkdir(parents=True)
    (tmp_path / "models" / "pop" / "pop.json").write_bytes(content)
    line = one_line_error(capsys, "evaluate", evaluate.main(["--run", str(tmp_path), "--model", "pop"]))
    assert expected in line and "python -m tidrec.fit --model pop" in line


def test_a_corrupt_training_record_is_an_input_error(tmp_path):
    folder = tmp_path / "models" / "pop"
    folder.mkdir(parents=True)
    (folder / "train_info.json").write_bytes(b"\x00\x01")
    with pytest.raises(InputError, match=r"train_info\.json: not valid JSON.*--retrain true"):
        pipeline.training_record(tmp_path, "pop")


def test_training_seconds_survive_a_train_info_that_is_not_an_object(tmp_path):
    from tidrec.training import TRAIN_INFO, record_training

    (tmp_path / TRAIN_INFO).write_text(json.dumps([1, 2]))
    record_training(tmp_path, "pop", 3.0, resumed=True)
    assert json.loads((tmp_path / TRAIN_INFO).read_text())["train_seconds"] == 3.0


def test_an_os_error_escaping_a_stage_is_one_line_when_the_user_can_fix_it(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "data" / "manifest.json"))

    monkeypatch.setattr(data_cli, "prepare_dataset", refuse)
    line = one_line_error(capsys, "data", data_cli.main(["--out", str(tmp_path)]))
    assert line.endswith(f"{tmp_path / 'data' / 'manifest.json'}: Permission denied")

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", "/dev/sdz")

    monkeypatch.setattr(data_cli, "prepare_dataset", broken)
    with pytest.raises(OSError, match="Input/output error"):  # not a user error: the traceback stays
        data_cli.main(["--out", str(tmp_path)])
