"""Out of distribution: the metric on task distributions other than the training one (sinusoid
amplitudes, phases, inputs and frequencies outside its ranges; images rotated, scaled or noisy
beyond what training saw)."""
from maml_tf.evaluation.settings import TEST_SEED, evaluate_settings
from maml_tf.tasks import transforms
from maml_tf.tasks.transforms import TransformedTasks


def out_of_distribution(maml, shifts, steps=None, num_tasks=100, seed=TEST_SEED, chunk_size=50):
    """Score ``maml`` on each task distribution of ``shifts`` (label -> tasks, the training
    distribution among them as the reference), e.g. :func:`sinusoid_shifts` or
    :func:`image_shifts`. Returns ``evaluate_settings``' result."""
    if not shifts:
        raise ValueError("shifts is empty: pass {label: task distribution}, e.g. sinusoid_shifts(tasks).")
    return evaluate_settings(maml, shifts, steps, num_tasks, seed, chunk_size)


def sinusoid_shifts(tasks):
    """The paper's sinusoid distribution ``tasks`` and distributions outside its ranges: larger
    amplitudes, phases beyond [0, pi], inputs beyond [-5, 5] (up to 7.5), higher frequencies (a shifted
    function family, y = A sin(f x - phase))."""
    from maml_tf.tasks import SinusoidTasks

    def like(**ranges):
        return SinusoidTasks(tasks.support_shots, tasks.query_shots, **{
            "amplitude_range": tasks.amplitude_range, "phase_range": tasks.phase_range,
            "input_range": tasks.input_range, **ranges})

    high = tasks.amplitude_range[1]
    low_phase, high_phase = tasks.phase_range
    return {
        "in distribution": tasks,
        f"amplitude {high:g}-{2 * high:g}": like(amplitude_range=(high, 2 * high)),
        f"phase {high_phase:.2f}-{2 * high_phase:.2f}": like(phase_range=(high_phase, 2 * high_phase - low_phase)),
        f"inputs {tasks.input_range[1]:g}-{1.5 * tasks.input_range[1]:g}":
            like(input_range=(tasks.input_range[1], 1.5 * tasks.input_range[1])),
        "frequency 1.5-2": like(frequency_range=(1.5, 2.0)),
    }


def image_shifts(tasks, rotations=(30, 45), scales=(0.7, 1.3), noise=(0.2, 0.4)):
    """Image task distribution ``tasks`` and shifted copies: both sets rotated by angles training
    never used (Omniglot trains with multiples of 90 degrees), zoomed, or with Gaussian pixel
    noise (clipped to [0, 1])."""
    shifts = {"in distribution": tasks}
    shifts.update({f"rotated {a:g} deg": TransformedTasks(tasks, transforms.rotate_images(a)) for a in rotations})
    shifts.update({f"scaled x{s:g}": TransformedTasks(tasks, transforms.scale_images(s)) for s in scales})
    shifts.update({f"pixel noise {s:g}": TransformedTasks(tasks, transforms.input_noise(s, "both", (0.0, 1.0)))
                   for s in noise})
    return shifts
