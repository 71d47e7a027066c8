"""bench/sensor.py on fake results (no training): cell settings, the frozen
quantile thermometer, statistics, the page and its figures."""
import numpy as np

from bench import sensor as bench
from larq_glt import models
from larq_glt.data import sensor


def test_variants_map_to_train_options():
    q = bench.Variant("thermo-q", 4).train_options()
    assert q["encoding"] == "glt" and q["glt_init"] == "quantile" and q["model"]["glt_trainable"] is False
    u = bench.Variant("glt-u", 4).train_options()
    assert u["glt_init"] == "uniform" and u["model"] == {"glt_lr_multiplier": 10.0}
    assert bench.Variant("nbc", None).train_options()["encoding"] == "nbc"
    groups = bench.plan_groups()
    assert groups[0][0] == "linear" and [v.key for v in groups[0][1]][-2:] == ["glt-u-k4", "glt-q-k4"]


def test_frozen_glt_has_no_trainable_weights():
    model = models.compact(input_size=32, num_classes=3, levels=4, glt_trainable=False)
    enc = model.get_layer("encoder")
    assert not enc.trainable_weights and enc.non_trainable_weights
    assert models.compact(input_size=32, num_classes=3, levels=4).get_layer("encoder").trainable_weights


def _fake_result(tmp_path):
    rng = np.random.default_rng(0)
    cells = []
    for inp in bench.INPUTS:
        for v in bench.plan_groups()[0][1]:
            for seed in (0, 1):
                base = {"glt-u-k4": 0.40, "glt-q-k4": 0.45, "thermo-k4": 0.30}.get(v.key, 0.35)
                acc = {"clean": base + 0.01 * seed}
                acc.update({bench.exposure_key(e): base - 0.02 * abs(np.log2(e) + 1.5) for e in sensor.EVAL_EXPOSURES})
                t = np.sort(rng.integers(1, 80, (3, 4)), axis=1).tolist() if v.levels else None
                cells.append({"input": inp, "variant": v.key, "name": v.name, "levels": v.levels, "seed": seed,
                              "accuracy": acc, "thresholds": t, "train_wall_s": 10.0})
    settings = {"image_size": 32, "epochs": 1, "seeds": [0, 1], "width": 1.0, "batch_size": 64,
                "learning_rate": 2e-3, "limit": 64, "num_train": 64, "num_val": 64, "glt_lr_multiplier": 10.0,
                "data_dir": "x", "sensor": sensor.SensorConfig().to_dict(), "eval_exposures": []}
    result = {"cells": cells, "settings": settings, "complete": False, "expected_cells": 36, "out": str(tmp_path),
              "timing": {"invocation_wall_s": 1.0}, "command": "bench/sensor.py"}
    result["summary"] = bench.summarize(cells)
    return result


def test_reading_page_and_figures(tmp_path):
    result = _fake_result(tmp_path)
    s = result["summary"]["linear"]["glt-q-k4"]["clean"]
    assert s["n"] == 2 and abs(s["mean"] - 0.455) < 1e-9
    text = " ".join(bench.reading(result))
    assert "glt-q-k4" in text and "+15.0 points vs thermo-k4 (seed ranges disjoint)" in text
    page = bench.render(result)
    assert "Partial results: 20 of 36 cells finished" in page and "| glt-q K=4 (12 planes) | 45.5 ± 0.7" in page
    bench.plot_exposure(result, tmp_path / "e.png")
    bench.plot_transfer(result, tmp_path / "t.png")
    assert (tmp_path / "e.png").stat().st_size > 1000 and (tmp_path / "t.png").stat().st_size > 1000
