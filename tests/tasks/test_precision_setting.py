"""The ``precision`` setting of the training commands: read from a settings file or --set,
checked before any data is read, and handed to the Trainer by every task."""

from pathlib import Path

import numpy as np
import pytest

from minitransformer import checkpoint
from minitransformer.tasks.common import train_config
from minitransformer.tasks.config import load_config
from minitransformer.tasks.finetune import FinetuneConfig, finetune
from minitransformer.tasks.pretrain import PretrainConfig, pretrain
from minitransformer.tasks.seq2seq import Seq2SeqConfig, train_seq2seq

TINY = dict(d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0, max_len=128, progress=False,
            eval_every=0, log_every=1)


@pytest.mark.parametrize("config_class", [PretrainConfig, FinetuneConfig, Seq2SeqConfig])
def test_precision_config_defaults_to_float32_and_reads_a_file_and_set(config_class, tmp_path):
    assert config_class().precision == "float32"
    assert train_config(config_class()).precision == "float32"
    path = tmp_path / "run.toml"
    path.write_text('[train]\nprecision = "float16"\n', encoding="utf-8")
    assert load_config(config_class, path).precision == "float16"
    assert train_config(load_config(config_class, path)).precision == "float16"
    assert load_config(config_class, path, ["precision=float32"]).precision == "float32"


@pytest.mark.parametrize("run, config_class, command", [
    (pretrain, PretrainConfig, "pretrain"),
    (finetune, FinetuneConfig, "finetune"),
    (train_seq2seq, Seq2SeqConfig, "train-seq2seq"),
])
def test_an_unknown_precision_is_refused_before_any_data_is_read(run, config_class, command):
    config = config_class(precision="bfloat16", data="missing-data.txt", out_dir="never")
    with pytest.raises(ValueError, match=f"{command}: precision must be 'float32' or 'float16', "
                                         "got precision='bfloat16'"):
        run(config)
    assert not Path("never").exists()


@pytest.mark.parametrize("run, config_class", [
    (pretrain, PretrainConfig), (finetune, FinetuneConfig), (train_seq2seq, Seq2SeqConfig)])
def test_every_task_trains_in_float16_precision_and_saves_float32_weights(run, config_class):
    run(config_class(steps=2, precision="float16", out_dir="f16", **TINY))
    state = checkpoint.load(Path("f16") / "last.npz")
    assert state["train_config"]["precision"] == "float16"
    assert set(state["loss_scaler"]) == {"scale", "clean_steps", "skipped_steps"}
    assert {array.dtype for array in state["model"].values()} == {np.dtype(np.float32)}
