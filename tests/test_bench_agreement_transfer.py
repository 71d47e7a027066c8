"""bench/agreement_transfer.py on generated result pages."""
import json

import pytest

from bench import agreement_transfer as at


def _page(path, key, rows):
    path.write_text(json.dumps({key: [{"run": r, "balanced_agreement_calibrated": a, "vww96": {"accuracy": v}}
                                      for r, a, v in rows]}))


def test_fit_reads_rows_and_candidates_once_and_inverts_the_line(tmp_path, capsys):
    line = lambda a: 0.1 + 0.8 * a  # noqa: E731
    _page(tmp_path / "a.json", "rows", [("r1", 0.70, line(0.70)), ("r2", 0.75, line(0.75))])
    _page(tmp_path / "b.json", "candidates", [("r3", 0.80, line(0.80)), ("r1", 0.70, line(0.70)),
                                              ("models/x", 0.80, line(0.80))])  # the same model, another name
    (tmp_path / "c.json").write_text(json.dumps({"rows": [{"run": "f", "vww96": {"accuracy": 0.5}}]}))
    (tmp_path / "d.json").write_text("[1, 2]")
    found = at.points(tmp_path)
    assert [p["run"] for p in found] == ["r1", "r2", "r3"]
    out = tmp_path / "out" / "t"
    out.parent.mkdir()
    assert at.main(["--pages", str(tmp_path), "--out", str(out)]) == 0
    result = json.loads((tmp_path / "out" / "t.json").read_text())
    f = result["fit"]
    assert f["runs"] == 3 and f["slope"] == pytest.approx(0.8) and f["intercept"] == pytest.approx(0.1)
    assert f["agreement_needed"] == pytest.approx(0.875)
    assert result["command"].startswith("python bench/agreement_transfer.py --pages")
    assert "87.5%" in (tmp_path / "out" / "t.md").read_text()


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert at.main(["--pages", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
    _page(tmp_path / "a.json", "rows", [("r1", 0.7, 0.6), ("r2", 0.7, 0.65)])
    assert at.main(["--pages", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "too few" in capsys.readouterr().err
    assert at.main(["--pages", str(tmp_path), "--target", "80", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--target" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.json").exists()
