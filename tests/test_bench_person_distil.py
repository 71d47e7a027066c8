"""bench/person_distil.py: the training command a model card states."""
import shlex

import larq_glt  # noqa: F401
from bench import person_distil
from larq_glt import train
from larq_glt.training import TrainConfig


def test_the_card_command_rebuilds_the_run_config_continuations_included():
    cfg = TrainConfig(dataset="unlabelled", data_dir="pool", kd_teacher="t.h5:input=unit,classes=a+b",
                      kd_temperature=1.0, glt_init="uniform", model={"width": 2.0, "glt_lr_multiplier": 1.0},
                      epochs=40, learning_rate=1e-3, init_from="runs/first", out="runs/second")
    command = person_distil.train_command(cfg)
    argv = shlex.split(command)[3:]  # after "python -m larq_glt.train"
    rebuilt = train.config_from_args(train.build_parser().parse_args(argv))
    for field in ("dataset", "data_dir", "kd_teacher", "kd_temperature", "glt_init", "epochs", "learning_rate",
                  "init_from", "out"):
        assert getattr(rebuilt, field) == getattr(cfg, field), field
    assert rebuilt.model["width"] == 2.0 and rebuilt.model["glt_lr_multiplier"] == 1.0
