"""bench/train_throughput.py: both grouped-convolution paths timed, the default restored."""
import json
from pathlib import Path

import pytest

from bench import train_throughput
from larq_glt import grouped_conv


@pytest.mark.slow  # fits six tiny models
def test_grouped_paths_are_timed_and_the_native_one_is_left_installed(tmp_path):
    out = tmp_path / "tt"
    assert train_throughput.main(["--encodings", "glt", "--steps", "1", "--warmup", "1", "--repeats", "1",
                                  "--image-size", "32", "--grouped-widths", "1", "--out", str(out)]) == 0
    result = json.loads(Path(f"{out}.json").read_text())
    (row,) = result["grouped_conv"]
    assert row["width"] == 1.0 and row["native"]["median"] > 0 and row["xla"]["median"] > 0
    assert row["speedup"] == row["native"]["median"] / row["xla"]["median"]
    text = Path(f"{out}.md").read_text()
    assert "## Grouped convolutions: TensorFlow's kernel against keras' XLA wrapper" in text
    assert "| 1 | " in text
    assert grouped_conv.installed()  # the benchmark gives the default back


def test_no_grouped_widths_skips_the_table(tmp_path):
    out = tmp_path / "tt"
    assert train_throughput.main(["--encodings", "glt", "--steps", "1", "--warmup", "1", "--repeats", "1",
                                  "--image-size", "32", "--grouped-widths", "--out", str(out)]) == 0
    assert "Grouped convolutions" not in Path(f"{out}.md").read_text()
    assert json.loads(Path(f"{out}.json").read_text())["grouped_conv"] == []


def test_the_page_says_whether_glt_overhead_meets_its_target():
    def result(glt, thermo):
        return {"command": "python bench/train_throughput.py ", "machine": {"cpus": 2, "tensorflow": "2.16.2"},
                "settings": {"image_size": 96, "batch_size": 64, "repeats": 1, "steps": 30, "grouped_widths": []},
                "images_per_second": {"glt": {"median": glt, "all": [glt]}, "thermo": {"median": thermo, "all": [thermo]}},
                "grouped_conv": [], "glt_overhead_vs_thermo": thermo / glt - 1.0}

    assert "GLT overhead over thermo: 10.0% (within the target of 15%)" in train_throughput.render(result(100.0, 110.0))
    assert "GLT overhead over thermo: 80.0% (over the target of 15%)" in train_throughput.render(result(100.0, 180.0))


def test_a_sampled_glt_is_timed_and_its_overhead_stated(tmp_path):
    out = tmp_path / "tt"
    assert train_throughput.main(["--encodings", "glt/2", "thermo", "--steps", "1", "--warmup", "1", "--repeats",
                                  "1", "--image-size", "32", "--batch-size", "8", "--grouped-widths",
                                  "--out", str(out)]) == 0
    result = json.loads(Path(f"{out}.json").read_text())
    assert set(result["glt_sampled_overhead_vs_thermo"]) == {"glt/2"}
    assert "GLT with its thresholds' gradient from 2 of 8 images (glt/2): " in Path(f"{out}.md").read_text()
