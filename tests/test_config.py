"""Configuration: presets, defaults and clear errors."""
import dataclasses
import re

import numpy as np
import pytest

from bitflip_lib.config import PRESETS, TrainConfig, make_config


def test_writeup_preset_matches_the_writeup():
    c = make_config("writeup", n=20)
    assert (c.gamma, c.lr, c.amsgrad, c.polyak, c.gradient_steps, c.buffer_capacity) == (0.9, 1e-3, True, 0.01, 5, 2**15)
    assert (c.num_train_agents, c.num_eval_agents, c.eps_start, c.eps_end, c.eps_decay) == (16, 1024, 1.0, 0.1, 0.999)
    assert c.her == "seed30" and c.solved_threshold == 1.0 and c.solved_window == 100 and c.clip_targets
    assert c.preset == "writeup"


def test_automatic_gamma_approaches_one_with_n():
    assert make_config(n=10).effective_gamma == 0.98
    assert make_config(n=1000).effective_gamma == pytest.approx(0.999)
    assert make_config(n=10, gamma=0.5).effective_gamma == 0.5


BAD_VALUES = [  # (field, value, words of the message that say what is allowed)
    ("n", 0, "an integer >= 1"),
    ("n", 2.0, "an integer >= 1"),
    ("arch", "cnn", "one of uvfa, mlp, har"),
    ("her", "always", "one of none, final, future, episode, seed30"),
    ("k", 0, "an integer >= 1"),
    ("seed", 1.5, "an integer >= 0"),  # was a torch error that did not name the field
    ("seed", -1, "an integer >= 0"),
    ("seed", True, "an integer >= 0"),
    ("seed", 2**63, "below 2**63"),
    ("gamma", 1.5, "(0, 1]"),
    ("gamma", 0.0, "(0, 1]"),
    ("gamma", "0.9", "(0, 1]"),  # was a TypeError from a comparison
    ("gamma", float("nan"), "(0, 1]"),
    ("lr", 0.0, "> 0"),
    ("lr", float("inf"), "finite"),
    ("lr", "1e-3", "> 0"),
    ("lr_end", 0.01, "(0, lr = 0.001]"),  # above the default lr 1e-3: that is not a decay
    ("amsgrad", 1, "True or False"),
    ("polyak", 0.0, "(0, 1]"),
    ("polyak", 1.5, "(0, 1]"),
    ("clip_targets", "no", "True or False"),  # was taken as true
    ("loss", "l1", "one of mse, huber"),
    ("double_dqn", None, "True or False"),
    ("hindsight_bound", 1, "True or False"),
    ("action_gap", 1.0, "[0, 1)"),  # alpha = 1 has no fixed point
    ("action_gap", -0.1, "[0, 1)"),
    ("action_gap", True, "[0, 1)"),
    ("batch_size", 0, "an integer >= 1"),
    ("gradient_steps", -1, "an integer >= 0"),
    ("buffer_capacity", 0, "an integer >= 1"),
    ("num_train_agents", 0, "an integer >= 1"),
    ("num_eval_agents", 10.0, "an integer >= 1"),
    ("max_steps", 0, "an integer >= 1 or None"),
    ("max_steps", True, "an integer >= 1 or None"),
    ("max_iterations", 0, "an integer >= 1"),
    ("max_seconds", -5, "a number > 0"),
    ("max_seconds", 0, "a number > 0"),
    ("eval_every", 0, "an integer >= 1"),
    ("solved_threshold", 1.01, "[0, 1]"),
    ("solved_window", 0, "an integer >= 1"),
    ("early_stop", "yes", "True or False"),
    ("eps_start", 1.5, "[0, 1]"),
    ("eps_end", -0.1, "[0, 1]"),
    ("eps_decay", -0.5, "(0, 1]"),  # was accepted: epsilon went 1.0, 0.1, 0.25, ...
    ("eps_decay", 1.5, "(0, 1]"),  # failed only mid-training, with an overflow
    ("eps_decay", 0.0, "(0, 1]"),
    ("eps_schedule", "cosine", "one of exponential, linear, constant"),
    ("eps_decay_steps", 0, "an integer >= 1"),
    ("hidden", (0,), "each an integer >= 1"),  # trained silently with an empty layer
    ("hidden", (-4,), "each an integer >= 1"),  # was a torch error that did not name the field
    ("hidden", (64, 2.5), "each an integer >= 1"),
    ("hidden", 64, "a tuple of layer widths"),
    ("hidden", "64", "a tuple of layer widths"),
    ("har_normalize_distance", 0, "True or False"),
    ("device", "gpu", "a torch device such as 'cpu'"),
    ("device", 0, "a torch device such as 'cpu'"),
    ("preset", "best", "one of default, writeup"),
]


@pytest.mark.parametrize("field, value, allowed", BAD_VALUES, ids=[f"{f}={v!r}" for f, v, _ in BAD_VALUES])
def test_every_bad_value_is_refused_naming_the_field_value_and_what_is_allowed(field, value, allowed):
    with pytest.raises(ValueError) as caught:
        TrainConfig(**{field: value})
    message = str(caught.value)
    assert message.startswith(f"{field} must be "), message
    assert f"got {value!r}" in message, message
    assert allowed in message, message


def test_every_field_has_a_bad_value_case():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert fields == {field for field, _, _ in BAD_VALUES}


def test_make_config_refuses_the_issue_cases_before_training():
    for bad in ({"eps_decay": -0.5}, {"eps_decay": 1.5}, {"hidden": (0,)}, {"hidden": (-4,)}, {"seed": 1.5},
                {"gamma": "0.9"}, {"clip_targets": "no"}):
        (field, value), = bad.items()
        with pytest.raises(ValueError, match=f"^{field} must be .* got {re.escape(repr(value))}"):
            make_config(**bad)
    assert make_config(clip_targets=False).clip_targets is False


def test_edge_values_that_are_valid_stay_valid():
    make_config(gamma=1, polyak=1.0, eps_decay=1.0, solved_threshold=0.0, eps_end=0.0, gradient_steps=0,
                max_steps=1, lr_end=1e-3, hidden=[8, 8], seed=2**63 - 1, device="cuda:1", max_seconds=0.5)
    make_config(gamma=np.float64(0.9), lr=np.float32(1e-3), polyak=None, max_steps=None, hidden=None)
    make_config("writeup", n=1024, arch="uvfa", her="none", loss="huber", eps_schedule="linear")


def test_replace_validates_too():
    with pytest.raises(ValueError, match="^gamma must be"):
        make_config().replace(gamma=2.0)


def test_train_checks_a_configuration_changed_after_construction():
    from bitflip_lib.trainer import train

    config = make_config(n=3, max_iterations=1, device="cpu")
    config.clip_targets = "no"
    with pytest.raises(ValueError, match="^clip_targets must be True or False"):
        train(config, progress=False)


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("best")
    with pytest.raises(ValueError, match="unknown configuration field"):
        make_config(learning_rate=0.1)
    assert set(PRESETS) >= {"default", "writeup"}
