"""One definition of each paper experiment's hyperparameters.

The reproduce scripts, the ``maml`` CLI and the tests all read these objects; a
smaller budget is a separate named preset, never an edit of ``paper``.
"""
import dataclasses
import math

from maml_tf.core.arguments import one_of


# Meta-training precisions a preset may name (compute only, like task_parallelism): float32,
# or mixed_bfloat16 (float32 weights, inner updates and losses; bfloat16 layers), which is
# faster only on CPUs with native bfloat16 (maml_tf.core.precision.native_bfloat16).
PRECISIONS = ("float32", "mixed_bfloat16")


def _check_precision(preset):
    one_of("precision", preset.precision, PRECISIONS)


def _check_epochs(preset):
    """Training runs whole epochs (a checkpoint each), so it must divide the iterations."""
    if preset.iterations < 1 or preset.steps_per_epoch < 1 or preset.iterations % preset.steps_per_epoch:
        raise ValueError(
            f"iterations ({preset.iterations}) must be a positive multiple of steps_per_epoch "
            f"({preset.steps_per_epoch}): change one of them.")


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
    activation: str = "relu"          # hidden activation, any Keras name (the paper: ReLU)
    first_order: bool = False         # first-order MAML (drops the second derivatives)
    authors_layers: bool = False      # kernels truncated normal (std 0.01), as the authors' code
    eval_shots: tuple = (5, 10, 20)   # K at meta-test (Figure 3 panels)
    eval_inner_steps: int = 10        # curves after 0..10 steps
    eval_tasks: int = 600
    eval_query_points: int = 100      # query points per test task (MSE estimate)
    steps_per_epoch: int = 1000       # checkpoint/log granularity
    amplitude_range: tuple = (0.1, 5.0)
    phase_range: tuple = (0.0, math.pi)
    input_range: tuple = (-5.0, 5.0)
    seed: int = 0
    precision: str = "float32"        # compute only: PRECISIONS

    def __post_init__(self):
        _check_epochs(self)
        _check_precision(self)

    @property
    def epochs(self):
        return self.iterations // self.steps_per_epoch


SINUSOID = {
    "paper": SinusoidPreset(),
    # The authors' code: their released command (cbfinn/maml README: update_lr=0.001) and
    # their weights (construct_fc_weights: truncated normal, std 0.01; biases zero).
    "code": SinusoidPreset(name="code", inner_lr=0.001, authors_layers=True),
    # The demo: same settings, 1/14 of the meta-iterations (a few minutes on 2 cores).
    "quick": SinusoidPreset(name="quick", iterations=5_000, steps_per_epoch=500),
    # For tests: seconds, enough to see learning.
    "smoke": SinusoidPreset(name="smoke", iterations=300, steps_per_epoch=100, eval_tasks=50,
                            eval_inner_steps=3),
}


# Fields added after run directories were first recorded: a record leaves them out at their
# default, so that an older run's record and a new one of the same setup are identical (an
# absent field reads as its default, maml_tf.experiments.runs).
ADDED_LATER = {"SinusoidPreset": ("activation", "first_order", "precision"),
               "ClassificationPreset": ("activation", "precision", "authors_images"),
               "RLPreset": ("env_options", "eval_sampling", "eval_task_source", "sampling_workers")}


def get(table, name):
    if name not in table:
        raise KeyError(f"Unknown preset {name!r}; choose one of {sorted(table)}.")
    return table[name]


@dataclasses.dataclass(frozen=True)
class ClassificationPreset:
    """One row of Table 1 (Section 5.2). Defaults are the paper's Omniglot 5-way 1-shot."""
    name: str = "paper"
    dataset: str = "omniglot"         # "omniglot" or "mini_imagenet"
    ways: int = 5
    shots: int = 1                    # K, support images per class
    # Query images per class. The paper is silent for Omniglot; the authors' code uses
    # K (update_batch_size), for MiniImagenet the paper says 15.
    query_shots: int = 1
    network: str = "conv"             # "conv" (conv4) or "fc" (256-128-64-64)
    filters: int = 64                 # conv4 width: 64 Omniglot, 32 MiniImagenet
    activation: str = "relu"          # hidden activation, any Keras name (the paper: ReLU)
    downsample: str = "stride"        # "stride" (Omniglot) or "maxpool" (MiniImagenet)
    image_size: int = 28
    channels: int = 1
    rotate: bool = True               # random 90-degree rotation per class (Omniglot)
    inner_steps: int = 1
    inner_lr: float = 0.4
    eval_inner_steps: int = 3         # paper: 3 (Omniglot), 10 (MiniImagenet)
    curve_steps: int = 10             # meta-test accuracy recorded after 0..curve_steps
    meta_batch_size: int = 32
    outer_lr: float = 0.001
    iterations: int = 60_000
    first_order: bool = False
    loss_reduction: str = "mean"      # the authors' code: "sum_over_shots"
    adapt: str = "all"                # the authors' code: "no_batch_norm"
    batch_norm: str = "transductive"  # batch statistics at test too, as the code
    # The authors' layers (cbfinn/maml): batch norm with an offset only (tf.contrib's
    # default scale=False), the Omniglot conv head drawn from N(0, 1), the FC net's
    # kernels from a normal truncated at 2 std 0.01. False: Keras' defaults (BN scale
    # and offset, Glorot-uniform kernels); the paper says neither.
    authors_layers: bool = False
    # The authors' Omniglot images: nearest-neighbour 28x28, binary (their resize_images.py
    # asked PIL for LANCZOS, which PIL ignores for the 1-bit PNGs; datasets.omniglot).
    # False: antialiased lanczos3. MiniImagenet's images are the same either way.
    authors_images: bool = False
    eval_tasks: int = 600
    validation_tasks: int = 200       # fixed tasks scored during training (curve)
    steps_per_epoch: int = 500        # checkpoint / validation interval in iterations
    seed: int = 0
    # How a meta-batch's tasks run (compute only, never the numbers): see MAML(task_parallelism=).
    task_parallelism: str = "auto"
    # Compute only, as task_parallelism: PRECISIONS (a run may resume in another one; each
    # command's is recorded in the run's commands.jsonl).
    precision: str = "float32"

    def __post_init__(self):
        _check_epochs(self)
        _check_precision(self)

    @property
    def epochs(self):
        return self.iterations // self.steps_per_epoch

    @property
    def setting(self):
        """Short name of the row, e.g. ``5way1shot``, ``5way1shot_fc_fo`` or ``5way1shot_silu``."""
        return (f"{self.ways}way{self.shots}shot" + ("_fc" if self.network == "fc" else "")
                + ("" if self.activation == "relu" else f"_{self.activation}")
                + ("_fo" if self.first_order else ""))


def _omniglot(ways, shots, **changes):
    # 5-way: 1 step, alpha 0.4, meta-batch 32; 20-way: 5 steps, alpha 0.1, meta-batch 16.
    five = ways == 5
    return ClassificationPreset(ways=ways, shots=shots, query_shots=shots, inner_steps=1 if five else 5,
                                inner_lr=0.4 if five else 0.1, meta_batch_size=32 if five else 16,
                                **changes)


def _mini(shots, first_order=False):
    return ClassificationPreset(
        dataset="mini_imagenet", ways=5, shots=shots, query_shots=15, filters=32,
        downsample="maxpool", image_size=84, channels=3, rotate=False, inner_steps=5,
        inner_lr=0.01, eval_inner_steps=10, meta_batch_size=4 if shots == 1 else 2,
        first_order=first_order, validation_tasks=100)


# Table 1 rows at the paper's budget, keyed by setting.
OMNIGLOT = {p.setting: p for p in (
    # 20-way 1-shot unrolled: 1.12 s per iteration against 2.05 looped on this 2-core
    # machine, for 4 minutes of compilation and 7 GB (2026-11-22, 20 steps each).
    _omniglot(5, 1), _omniglot(5, 5), _omniglot(20, 1, task_parallelism="unrolled"), _omniglot(20, 5),
    _omniglot(5, 1, network="fc"), _omniglot(5, 5, network="fc"),
    # Not in Table 1 (the paper compares first order on MiniImagenet): the same comparison
    # on real Omniglot data, since MiniImagenet images are not available here.
    _omniglot(5, 1, first_order=True))}
MINI_IMAGENET = {p.setting: p for p in (_mini(1), _mini(5), _mini(1, True), _mini(5, True))}

# The authors' code (cbfinn/maml), where it departs from the paper's text: its
# cross-entropy is summed over a task's examples and divided by K (``xent`` / K under
# tf.gradients), so alpha acts on N times the mean loss's gradient (2.0 on the mean
# for both 5-way 0.4 and 20-way 0.1); batch norm (offset only) is meta-learned but
# not adapted in the inner loop; its layers' initialisation (``authors_layers``);
# Omniglot is tested after 10 steps.
_CODE = {"loss_reduction": "sum_over_shots", "adapt": "no_batch_norm", "authors_layers": True,
         "eval_inner_steps": 10}
# Smaller budgets of the same settings: only the budget changes, never the method;
# "code" and "authors" are the exceptions, named for what they are.
BUDGETS = {
    "paper": {},
    "code": _CODE,
    # The code preset on the authors' Omniglot images (``authors_images``). Not in it: their
    # training stream cycles one fixed pool of 200,000 tasks (docs/reproduction.md).
    "authors": {**_CODE, "authors_images": True},
    "quick": {"iterations": 2_000, "eval_tasks": 200, "validation_tasks": 50, "steps_per_epoch": 250},
    "smoke": {"iterations": 20, "eval_tasks": 8, "validation_tasks": 4, "steps_per_epoch": 10,
              "meta_batch_size": 2, "curve_steps": 3},
}


def classification(table, setting, budget="paper"):
    """A Table 1 preset: ``table`` is ``OMNIGLOT`` or ``MINI_IMAGENET``."""
    preset = get(table, setting)
    return dataclasses.replace(preset, name=budget, **get(BUDGETS, budget))


# ----------------------------------------------------------------------------- RL
# Where an RL meta-test's tasks come from: drawn from the preset's seed, or the authors'
# test scripts' fixed ones (maml_rl; navigation and cheetah-dir).
EVAL_TASK_SOURCES = ("seeded", "authors")


@dataclasses.dataclass(frozen=True)
class RLPreset:
    """Section 5.3 / Figures 4 and 5. Defaults are the paper's settings for 2D navigation.

    MAML meta-trains for ``iterations`` meta-iterations; the pretrained and oracle
    baselines train the same number of TRPO iterations on the same number of tasks and
    trajectories per iteration (the paper does not give their budget); the random
    baseline is not trained. Every method is then fine-tuned on ``eval_tasks`` fixed
    test tasks with the inner rule: step k has step size ``test_step_sizes[k]``, the
    last one repeated (``method_test_step_sizes``, pairs ``(method, sizes)``, gives some
    methods their own, as the authors' test scripts did).

    ``env_options``, pairs ``(keyword, value)``, go to the environment of every method in
    training and at test (e.g. the half-cheetah's ``observation="rllab"``,
    maml_tf.rl.envs.locomotion). The meta-test samples as training does unless
    ``eval_sampling`` names another of maml_tf.rl.learner.SAMPLING ("complete": every
    started episode finished, the authors' test); its tasks are drawn from
    ``10_000 + seed`` ("seeded") or are the authors' test scripts' ("authors").
    """
    name: str = "paper"
    env: str = "navigation"           # a name of maml_tf.rl.envs.ENVIRONMENTS
    iterations: int = 500             # meta-iterations ("up to 500" in the paper)
    meta_batch_size: int = 20         # tasks per meta-iteration: 20 navigation, 40 locomotion
    episodes_per_task: int = 20       # trajectories per task, pre- and post-update
    inner_lr: float = 0.1             # alpha of the inner VPG step in meta-training
    first_order: bool = False
    max_kl: float = 0.01              # TRPO trust region
    hvp: str = "exact"                # TRPO's KL Hessian-vector products (maml_tf.rl.learner.HVP_METHODS)
    sampling: str = "episodes"        # a task's batch: episodes, or a budget of steps (learner.SAMPLING)
    gamma: float = 0.99
    gae_lambda: float = 1.0           # 1: returns minus the linear feature baseline
    hidden: tuple = (100, 100)
    eval_tasks: int = 40
    eval_episodes_per_task: int = 20
    eval_inner_steps: int = 3         # returns after 0..3 gradient steps
    test_step_sizes: tuple = (0.1, 0.05)
    method_test_step_sizes: tuple = ()
    seed: int = 0
    env_options: tuple = ()
    eval_sampling: str = None         # None: as in training
    eval_task_source: str = "seeded"  # EVAL_TASK_SOURCES
    # Compute only, never the numbers: processes stepping the environments in parallel
    # (PolicyLearner(sampling_workers=); `maml train --sampling-workers N`).
    sampling_workers: int = 1

    def __post_init__(self):
        one_of("eval_task_source", self.eval_task_source, EVAL_TASK_SOURCES)
        if not isinstance(self.sampling_workers, int) or isinstance(self.sampling_workers, bool) \
                or self.sampling_workers < 1:
            raise ValueError(f"sampling_workers must be a positive integer, got {self.sampling_workers!r}.")

    def step_sizes(self, method):
        """The meta-test step sizes of ``method``."""
        return dict(self.method_test_step_sizes).get(method, self.test_step_sizes)


def _rl_budgets(paper, **budgets):
    """``{"paper": paper, name: paper with the changes of budgets[name], ...}``."""
    return {"paper": paper, **{name: dataclasses.replace(paper, name=name, **changes)
                               for name, changes in budgets.items()}}


# The authors' navigation code, where it departs from the paper's text (Appendix A.2:
# alpha 0.1 in all RL experiments): maml_rl's maml_trpo_point.py meta-trains with
# fast_learning_rate 0.5 (the evaluated run's directory reads "flr_0.5", "mbs20") and
# test_maml_point.py fine-tunes every method with 0.5, then 0.25. Its TRPO (MAML's
# and the baselines') takes Hessian-vector products by rllab's float32 finite
# differences, the ConjugateGradientOptimizer's default, not exactly. Its sampler
# filled a budget of 20 (40 at test) x 100 steps per goal with episodes, restarting
# one as soon as it reached the goal.
_NAVIGATION_CODE = dict(inner_lr=0.5, test_step_sizes=(0.5, 0.25), hvp="finite_difference", sampling="steps")
# Smaller budgets change only the amount of sampling and training, never the method;
# "code" and "authors" are the exceptions, named for what they are.
NAVIGATION = _rl_budgets(
    # Section 5.3: "adaptation to a new task with up to 4 gradient updates, each with 40 samples".
    RLPreset(eval_episodes_per_task=40),
    code=_NAVIGATION_CODE,
    # The code preset's training, meta-tested as test_maml_point.py did: its 40 goals
    # (np.random.seed(1)), whole episodes only (rllab's sampler finished every episode it
    # started within the 4000 steps per goal, where ours drops each row's unfinished
    # last one), returns averaged over them. Training is the code preset's, so its run
    # directory may be evaluated with this preset.
    authors=dict(_NAVIGATION_CODE, eval_sampling="complete", eval_task_source="authors"),
    # The code preset with the authors' training sampler too (maml_rl's VectorizedSampler, one
    # environment per goal: episodes back to back until the goals' complete episodes hold
    # 20 x 20 x 100 steps, each goal's unfinished last one dropped, where "steps" drops each of
    # 20 rows' last); "authors_stream" meta-tests it as "authors" does.
    code_stream=dict(_NAVIGATION_CODE, sampling="stream"),
    authors_stream=dict(_NAVIGATION_CODE, sampling="stream", eval_sampling="complete", eval_task_source="authors"),
    # A tenth of the meta-iterations, half the tasks per meta-batch.
    quick=dict(iterations=50, meta_batch_size=10),
    # For tests: seconds.
    smoke=dict(iterations=2, meta_batch_size=2, episodes_per_task=4, eval_tasks=3,
               eval_episodes_per_task=2))
# The authors' locomotion code (maml_rl's cluster_maml_trpo_{cheetah,ant}.py and the
# test_maml_*.py scripts that made Figure 5), where it departs from the paper's text: the
# evaluated MAML checkpoint (its directory name gives trajectories per task "fbs", tasks
# "mbs", alpha "flr", trust region "mlr"; "itr_N" its iteration), rllab's finite-difference
# Hessian-vector products, its sampler's budget of steps (a fallen ant restarts), and test
# step sizes per method (the first step's, then the
# scripts' learning_rate factor times it). The pretrained and oracle baselines train as
# many iterations as MAML here (the authors' checkpoints: 475 to 1975).
_LOCOMOTION_CODE = {
    # maml1_fbs10_mbs40_flr_0.1_mlr0.01/itr_475; steps maml 0.1, pretrain 0.02, random 0.1, then half.
    "cheetah-vel": dict(iterations=475, episodes_per_task=10, method_test_step_sizes=(
        ("maml", (0.1, 0.05)), ("pretrained", (0.02, 0.01)), ("random", (0.1, 0.05)))),
    # maml1_fbs20_mbs40_flr_0.1_mlr0.02/itr_100; steps maml 0.1, pretrain 0.2, random 1.0, then half.
    "cheetah-dir": dict(iterations=100, max_kl=0.02, method_test_step_sizes=(
        ("maml", (0.1, 0.05)), ("pretrained", (0.2, 0.1)), ("random", (1.0, 0.5)))),
    # maml1_fbs20_mbs40_flr_0.1_mlr0.01/itr_375; steps maml 0.1, pretrain 0.2, random 1.0, then half.
    "ant-vel": dict(iterations=375, method_test_step_sizes=(
        ("maml", (0.1, 0.05)), ("pretrained", (0.2, 0.1)), ("random", (1.0, 0.5)))),
    # maml1_fbs40_mbs40_flr_0.1_mlr0.01/itr_575; 8000 test steps (40 trajectories); steps
    # maml 0.1, pretrain 0.2, random 1.0, then 0.01 times that.
    "ant-dir": dict(iterations=575, episodes_per_task=40, eval_episodes_per_task=40, method_test_step_sizes=(
        ("maml", (0.1, 0.001)), ("pretrained", (0.2, 0.002)), ("random", (1.0, 0.01)))),
}
# The authors' environment where ours departs from it in what the policy and the baseline
# see (docs/research/fig5_authors_setup.md, section 2, items 1, 3, 5): maml_rl's cheetah
# observes the robot's centre of mass (its x: where the robot is), is rewarded for the
# centre of mass's velocity, and starts from rllab's reset noise; the run is the code
# preset's, meta-tested on the authors' test directions (18 forward, 22 backward).
_LOCOMOTION_AUTHORS = {
    "cheetah-dir": dict(env_options=(("observation", "rllab"), ("velocity", "com"), ("reset_noise", "rllab")),
                        eval_task_source="authors"),
}
# The ant's physics in every preset: rllab's ant.xml (maml_rl's vendor/mujoco_models/ant.xml,
# the authors' ant: one RK4 step of 0.02 per action, its contact softness and start pose) on
# gymnasium's robot (maml_tf.rl.envs.locomotion.RLLAB_ANT); it steps in 0.65 of the CPU time
# of gymnasium's two steps of 0.01, finite and without MuJoCo warnings (benchmarks/README.md).
_LOCOMOTION_ENV = {"ant-vel": (("physics", "rllab"),), "ant-dir": (("physics", "rllab"),)}


def _locomotion_code(env):
    return dict(hvp="finite_difference", sampling="steps", **_LOCOMOTION_CODE[env])


LOCOMOTION = {env: _rl_budgets(
    RLPreset(env=env, meta_batch_size=40, env_options=_LOCOMOTION_ENV.get(env, ())),
    code=_locomotion_code(env),
    **({"authors": dict(_locomotion_code(env), **_LOCOMOTION_AUTHORS[env]),
        # The authors' configuration and environment with exact products instead of rllab's
        # finite differences: tells the environment's part from the products' (issue 32).
        # Trained to the paper's 500 iterations (the authors' evaluated checkpoint is their 100th).
        "authors_exact": dict(_locomotion_code(env), **_LOCOMOTION_AUTHORS[env], hvp="exact", iterations=500),
        # authors_exact on our environment (meta-tested on the same authors' directions): the
        # two differ in the environment alone, this and the paper preset in the configuration.
        "code_exact": dict(_locomotion_code(env), hvp="exact", iterations=500,
                           eval_task_source=_LOCOMOTION_AUTHORS[env]["eval_task_source"])}
       if env in _LOCOMOTION_AUTHORS else {}),
    quick=dict(iterations=50, meta_batch_size=10, episodes_per_task=10, eval_tasks=20,
               eval_episodes_per_task=10),
    smoke=dict(iterations=2, meta_batch_size=2, episodes_per_task=2, eval_tasks=2,
               eval_episodes_per_task=2))
    for env in ("cheetah-vel", "cheetah-dir", "ant-vel", "ant-dir")}
