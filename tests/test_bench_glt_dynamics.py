"""GLT thresholds learn: on a small generated linear-sensor task (codes mostly
below ~60 of 255) the default setting moves them toward the dark codes."""
import numpy as np

from bench import glt_dynamics
from larq_glt import encoders


def test_default_thresholds_move_toward_the_dark_codes():
    r = glt_dynamics.train_thresholds(levels=4, init="uniform", multiplier=encoders.DEFAULT_LOGIT_SCALE,
                                      epochs=4, seed=0)
    before, after = np.asarray(r["before"]), np.asarray(r["after"])
    p50 = r["data_p50_p95_p99"][0]
    assert before.min() > 2 * p50  # the uniform thermometer starts far above the bulk of the data
    assert (after <= before).all() and r["mean_move"] < -15  # every threshold moved down, by > 15 codes on average
    assert (after[:, 0] < before[:, 0] - 20).all()  # the first level most
    slow = glt_dynamics.train_thresholds(levels=4, init="uniform", multiplier=1.0, epochs=4, seed=0)
    assert slow["mean_move"] > r["mean_move"] / 2  # at the old default (1) they move less than half as far


def test_logit_scale_default_and_old_saved_layers():
    assert encoders.GLT().logit_scale == encoders.DEFAULT_LOGIT_SCALE == 10.0
    config = encoders.GLT(levels=4).get_config()
    del config["logit_scale"]  # a layer saved before the option existed was trained at 1
    assert encoders.GLT.from_config(config).logit_scale == 1.0


def test_cli_records_the_multiplier():
    from larq_glt import train

    args = train.build_parser().parse_args(["--dataset", "synthetic"])
    cfg = train.config_from_args(args)
    assert cfg.model == {"glt_lr_multiplier": 10.0} and cfg.glt_init == "quantile"
    args = train.build_parser().parse_args(["--dataset", "synthetic", "--encoding", "thermo", "--sensor", "linear",
                                            "--sensor-exposure", "0.25", "2"])
    cfg = train.config_from_args(args)
    assert cfg.model == {} and cfg.sensor == "linear"
    assert cfg.sensor_params == {"exposure_min": 0.25, "exposure_max": 2.0}
