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


def test_the_authors_preset_is_the_code_preset_on_the_authors_images(monkeypatch):
    from maml_tf.datasets import omniglot
    from maml_tf.experiments import classification

    for table in (presets.OMNIGLOT, presets.MINI_IMAGENET):
        for setting in table:
            code, authors = (presets.classification(table, setting, b) for b in ("code", "authors"))
            assert authors.authors_images and not code.authors_images
            assert dataclasses.replace(authors, name="code", authors_images=False) == code
    calls = []
    monkeypatch.setattr(omniglot, "load", lambda split, data_dir, size, resize: calls.append(resize))
    for budget in ("authors", "code"):
        classification.load_split(presets.classification(presets.OMNIGLOT, "5way1shot_fc", budget), "train")
    assert calls == ["nearest", "lanczos3"]
