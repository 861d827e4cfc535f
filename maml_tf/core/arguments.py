"""Checks of the numbers a user passes (step counts, sizes, rates): a one-line error naming
the argument, the value and what is allowed, raised before any work starts. Imports no
TensorFlow, so the task distributions and the evaluation code share them."""
import math
import numbers


def whole_number(name, value, minimum=0, none_ok=False):
    """``value`` as an int >= ``minimum`` (a whole float such as 5.0 too; never a bool or a
    string); None passes when ``none_ok``. Else TypeError / ValueError naming ``name``."""
    if value is None and none_ok:
        return None
    allowed = f"a whole number >= {minimum}" + (" or None" if none_ok else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__}).")
    if not (math.isfinite(value) and float(value).is_integer() and value >= minimum):
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")
    return int(value)


def positive_number(name, value):
    """``value`` as a finite float > 0 (never a bool or a string), else TypeError / ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number > 0, got {value!r} ({type(value).__name__}).")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def flag(name, value):
    """``value`` as a bool (True / False, numpy's too), else TypeError: a string such as
    "no" would otherwise count as True."""
    if value is True or value is False or type(value).__name__ == "bool_":
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__}).")


def one_of(name, value, allowed, extra=""):
    """``value`` if it is one of ``allowed`` (names), else ValueError listing them; ``extra``
    follows the list, e.g. " for AntDir" or " or an InnerSGD". A list value is refused too."""
    try:
        ok = value in allowed
    except (TypeError, ValueError):  # unhashable against a set/dict keys, or an array's ambiguous ==
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}{extra}, got {value!r}.")
    return value
