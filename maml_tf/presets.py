"""One definition of each paper experiment's hyperparameters.

The reproduce scripts, the ``maml`` CLI and the tests all read these objects; a
smaller budget is a separate named preset, never an edit of ``paper``.
"""
import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class SinusoidPreset:
    """Section 5.1 / Figure 3. Defaults are the paper's settings."""
    name: str = "paper"
    iterations: int = 70_000          # meta-iterations (Adam steps)
    meta_batch_size: int = 25         # tasks per meta-iteration
    support_shots: int = 10           # K during meta-training
    query_shots: int = 10
    inner_steps: int = 1
    inner_lr: float = 0.01            # alpha (the authors' code: 0.001)
    outer_lr: float = 0.001           # beta, Adam
    hidden: tuple = (40, 40)
    eval_shots: tuple = (5, 10, 20)   # K at meta-test (Figure 3 panels)
    eval_inner_steps: int = 10        # curves after 0..10 steps
    eval_tasks: int = 600
    eval_query_points: int = 100      # query points per test task (MSE estimate)
    steps_per_epoch: int = 1000       # checkpoint/log granularity
    amplitude_range: tuple = (0.1, 5.0)
    phase_range: tuple = (0.0, math.pi)
    input_range: tuple = (-5.0, 5.0)
    seed: int = 0

    @property
    def epochs(self):
        return max(1, self.iterations // self.steps_per_epoch)


SINUSOID = {
    "paper": SinusoidPreset(),
    # The authors' released command (cbfinn/maml README: update_lr=0.001), else as paper.
    "code": SinusoidPreset(name="code", inner_lr=0.001),
    # The demo: same settings, 1/14 of the meta-iterations (a few minutes on 2 cores).
    "quick": SinusoidPreset(name="quick", iterations=5_000, steps_per_epoch=500),
    # For tests: seconds, enough to see learning.
    "smoke": SinusoidPreset(name="smoke", iterations=300, steps_per_epoch=100, eval_tasks=50,
                            eval_inner_steps=3),
}


def get(table, name):
    if name not in table:
        raise KeyError(f"Unknown preset {name!r}; choose one of {sorted(table)}.")
    return table[name]
