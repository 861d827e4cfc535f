"""The numbers of Finn, Abbeel & Levine (ICML 2017) that our results are compared with,
defined once. Each lookup returns the ``paper`` field of a result record
(:mod:`maml_tf.report.schema`): the steps the paper reports, its means, its 95% CIs
when it gives them, and a note when the number is not a per-step curve."""

# Section 5.2, Table 1: meta-test accuracy (%) and 95% CI, after the test-time steps.
TABLE1 = {
    "omniglot": {"5way1shot": (98.7, 0.4), "5way5shot": (99.9, 0.1), "20way1shot": (95.8, 0.3),
                 "20way5shot": (98.9, 0.2), "5way1shot_fc": (89.7, 1.1), "5way5shot_fc": (97.5, 0.6)},
    "mini_imagenet": {"5way1shot": (48.70, 1.84), "5way5shot": (63.11, 0.92),
                      "5way1shot_fo": (48.07, 1.75), "5way5shot_fo": (63.15, 0.91)},
}

# Section 5.1 (the text beside Figure 3): sinusoid, K = 5, MSE after 1 / 5 / 10 gradient steps.
SINUSOID_STEPS = (1, 5, 10)
SINUSOID_MSE = {"maml": {5: (0.67, 0.38, 0.35)}, "pretrained": {5: (2.41, 2.23, 2.19)}}

# Section 5.3, the table of Figures 4 and 5: mean return after 0 / 1 / 2 / 3 gradient
# steps on 40 test tasks. One number: the oracle (not fine-tuned) or a random
# initialisation the text gives as "about" that value.
RL_RETURNS = {
    "navigation": {"maml": (-40.4, -11.7, -3.3, -3.2), "pretrained": (-40.8, -19.7, -11.7, -8.5),
                   "random": (-82.7, -58.0, -53.8, -46.8), "oracle": (-2.3,)},
    "cheetah-vel": {"maml": (-129.5, -78.6, -66.6, -60.8), "pretrained": (-158.0, -135.4, -128.5, -133.6),
                    "random": (-255.0,), "oracle": (-54.5,)},
    "cheetah-dir": {"maml": (-50.7, 293.2, 313.5, 315.7), "pretrained": (-43.0, -24.8, -12.9, 19.6),
                    "random": (-35.7, 21.8, 62.3, 86.2), "oracle": (442.7,)},
    "ant-vel": {"maml": (30.6, 96.7, 100.1, 101.4), "pretrained": (-1.8, 6.1, 8.5, 9.5),
                "random": (-79.0,), "oracle": (107.9,)},
    "ant-dir": {"maml": (8.7, 499.2, 500.7, 499.1), "pretrained": (3.2, 1.3, 6.5, 6.9),
                "random": (3.1, 9.3, 16.0, 26.1), "oracle": (524.8,)},
}
RL_NOTES = {
    "oracle": "one number in the paper, without fine-tuning: compare with our 0-step return",
    "random": "the paper's text gives 'about' this value at every step",
}


def table1(dataset, setting, step):
    """Table 1's accuracy for ``setting`` (reported after ``step`` test-time steps), or None."""
    if setting not in TABLE1[dataset]:
        return None
    mean, ci = TABLE1[dataset][setting]
    return {"source": "Section 5.2, Table 1", "steps": [step], "mean": [mean], "ci95": [ci], "note": None}


def sinusoid(method, shots):
    """Section 5.1's MSE of ``method`` with ``shots`` support points, or None."""
    values = SINUSOID_MSE.get(method, {}).get(shots)
    if values is None:
        return None
    return {"source": "Section 5.1, Figure 3", "steps": list(SINUSOID_STEPS), "mean": list(values),
            "ci95": None, "note": None}


def rl_returns(env, method):
    """Figure 4's (navigation) or Figure 5's return of ``method``; ``steps`` is None when the
    one value holds at every step (the random initialisation's "about")."""
    values = RL_RETURNS[env].get(method)
    if values is None:
        return None
    figure = "Figure 4" if env == "navigation" else "Figure 5"
    if len(values) > 1:
        steps, note = list(range(len(values))), None
    else:
        steps, note = ([0] if method == "oracle" else None), RL_NOTES[method]
    return {"source": f"Section 5.3, {figure}", "steps": steps, "mean": list(values), "ci95": None,
            "note": note}
