"""bench/prune_kd.py: the acceptance verdict and the results page on fake cells
(the training itself is covered by tests/test_training.py)."""

from bench import prune_kd


def _row(ratio, kd, acc, bits):
    return {"prune_ratio": ratio, "kd": kd, "val_accuracy": acc, "weight_bits": bits,
            "under_1_mbit": bits <= prune_kd.BUDGET_BITS, "before_pruning": 0.56, "after_ramp": 0.5,
            "binary_macs": 10 * bits}


def test_verdict_compares_the_best_cell_under_budget_with_the_unpruned_one():
    rows = [_row(0, False, 0.58, 3_500_000), _row(0.5, False, 0.53, 950_000),
            _row(0, True, 0.59, 3_500_000), _row(0.5, True, 0.555, 950_000)]
    v = prune_kd.verdict(rows)
    assert v["best_under_1_mbit"] is rows[3]
    assert v["gap_points"] == 2.5 and v["within_3_points"]
    assert v["gap_points_same_loss"] == 3.5
    rows[3]["val_accuracy"] = 0.54
    assert not prune_kd.verdict(rows)["within_3_points"]


def test_verdict_and_page_without_a_cell_under_budget():
    rows = [_row(0, False, 0.58, 3_500_000)]
    assert prune_kd.verdict(rows)["best_under_1_mbit"] is None
    result = {"command": "python bench/prune_kd.py", "cells": rows, "verdict": prune_kd.verdict(rows),
              "teacher": None, "dense": {"val_accuracy": 0.56}, "machine": "2 CPU cores",
              "seconds_this_invocation": 1.0,
              "settings": {"data_dir": "../shared/data/imagenette96", "image_size": 64, "limit": 3000, "width": 4.0,
                           "encoding": "glt", "epochs": 15, "prune_epochs": 3, "finetune_epochs": 4}}
    page = prune_kd.markdown(result)
    assert "Incomplete" in page and "| 0 | no | 3,500,000 | 3.500 |" in page
