"""bench/person_detector.py: the recipe syntax of its cross-validation mode
(the training itself is what tests/test_training.py covers)."""
import pytest

from bench import person_detector


def test_recipes_parse_with_an_optional_glt_multiplier():
    assert person_detector.parse_recipe("ft30:30:3e-4") == {
        "name": "ft30", "epochs": 30, "learning_rate": 3e-4, "glt_lr_multiplier": 1.0}
    assert person_detector.parse_recipe("g:10:1e-3:10")["glt_lr_multiplier"] == 10.0


@pytest.mark.parametrize("bad", ["ft30", "ft30:30", ":30:1e-3", "a:0:1e-3", "a:3:-1", "a:3:1e-3:0", "a:x:1e-3",
                                 "a:3:1e-3:2:9"])
def test_bad_recipes_are_refused_with_the_syntax(bad):
    with pytest.raises(SystemExit, match="name:epochs:learning_rate"):
        person_detector.parse_recipe(bad)


def test_glt_multiplier_of_one_adds_no_model_override():
    assert person_detector._glt_model(1.0) == {}
    assert person_detector._glt_model(10.0) == {"glt_lr_multiplier": 10.0}
