"""The shared argument checks of maml_tf.core.arguments."""
import numpy as np
import pytest

from maml_tf.core.arguments import one_of


def test_one_of_returns_an_allowed_value():
    assert one_of("part", "both", ("support", "both")) == "both"
    assert one_of("inner_rule", "lslr", {"sgd": 1, "lslr": 2}) == "lslr"  # a dict: its keys


def test_one_of_names_the_argument_the_value_and_the_choices():
    with pytest.raises(ValueError) as info:
        one_of("hvp", "fast", ("exact", "finite_difference"))
    assert str(info.value) == "hvp must be one of exact, finite_difference, got 'fast'."
    with pytest.raises(ValueError, match=r"^inner_rule must be one of sgd, lslr or an InnerSGD, got 'adam'\.$"):
        one_of("inner_rule", "adam", {"sgd": 1, "lslr": 2}, " or an InnerSGD")


@pytest.mark.parametrize("allowed", [("a", "b"), {"a", "b"}, {"a": 0, "b": 1}])
@pytest.mark.parametrize("value", [["a"], {"a": 1}, np.array(["a", "b"]), None, 1, "A"])
def test_one_of_refuses_other_values_with_the_same_value_error(allowed, value):
    """An unhashable value (a list against a set) is a ValueError too, never a TypeError from ``in``."""
    with pytest.raises(ValueError, match=r"^x must be one of .*, got "):
        one_of("x", value, allowed)
