"""bench/readme_figures.py: README figures rewritten from their benchmark results."""
import json

from bench import readme_figures


def test_stale_figures_are_listed_and_rewritten_in_their_written_style(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "r.json").write_text(json.dumps(
        {"acc": 0.7444, "instr": {"mean": 4274440.0}, "margin": [-0.0042, 0.0238], "n": 500, "big": 939328}))
    text = ("a 74.4%<!-- r.json acc % --> b 4.27<!-- r.json instr.mean M --> c −0.4<!-- r.json margin.0 % --> "
            "d +2.4<!-- r.json margin.1 % --> e 500<!-- r.json n --> f 939,328<!-- r.json big -->")
    assert readme_figures.stale(text, tmp_path) == []
    (tmp_path / "benchmarks" / "r.json").write_text(json.dumps(
        {"acc": 0.80, "instr": {"mean": 2400000.0}, "margin": [0.011, 0.0301], "n": 500, "big": 1000}))
    assert [s[0] for s in readme_figures.stale(text, tmp_path)] == [
        "r.json acc", "r.json instr.mean", "r.json margin.0", "r.json margin.1", "r.json big"]
    new = readme_figures.refresh(text, tmp_path)
    assert new == ("a 80.0%<!-- r.json acc % --> b 2.40<!-- r.json instr.mean M --> c +1.1<!-- r.json margin.0 % --> "
                   "d +3.0<!-- r.json margin.1 % --> e 500<!-- r.json n --> f 1,000<!-- r.json big -->")
    assert readme_figures.stale(new, tmp_path) == []
    (tmp_path / "benchmarks" / "r.json").write_text(json.dumps({"acc": 0.8, "instr": {"mean": 1.0},
                                                                "margin": [-0.05, 0.0], "n": 1, "big": 1}))
    assert "c −5.0<!--" in readme_figures.refresh(new, tmp_path)


def test_signs_rounding_and_ranges():
    shown = readme_figures.shown
    assert shown("0.4", -0.004, " %") == "−0.4"  # a negative is typeset alike, signed figure or not...
    assert shown("−0.4", -0.004, " %") == "−0.4" and shown("-0.4", 0.004, " %") == "+0.4"
    assert shown("+1.0", -0.0004, " %") == "+0.0"  # ...and a rounded zero has no minus
    assert shown("5", 4.9, None) == "5" and shown("1,000", 999.6, None) == "1,000"
    m = readme_figures.FIGURE.search("10-12<!-- r.json n -->")
    assert m.group(1) == "12"  # the hyphen of a range is not a sign
