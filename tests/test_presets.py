"""maml_tf.presets: every preset trains whole epochs; a budget that does not is refused."""
import dataclasses

import pytest

from maml_tf import presets


def _all_presets():
    return list(presets.SINUSOID.values()) + [
        presets.classification(table, setting, budget)
        for table in (presets.OMNIGLOT, presets.MINI_IMAGENET) for setting in table for budget in presets.BUDGETS]


def test_every_preset_is_whole_epochs():
    for preset in _all_presets():
        assert preset.epochs * preset.steps_per_epoch == preset.iterations, preset


@pytest.mark.parametrize("preset", [presets.SINUSOID["smoke"],
                                    presets.classification(presets.OMNIGLOT, "5way1shot", "smoke")],
                         ids=["sinusoid", "classification"])
@pytest.mark.parametrize("iterations, steps_per_epoch", [(250, 100), (0, 100), (100, 0)])
def test_iterations_must_be_a_multiple_of_steps_per_epoch(preset, iterations, steps_per_epoch):
    with pytest.raises(ValueError) as error:
        dataclasses.replace(preset, iterations=iterations, steps_per_epoch=steps_per_epoch)
    message = str(error.value)
    assert f"iterations ({iterations})" in message and f"steps_per_epoch ({steps_per_epoch})" in message
