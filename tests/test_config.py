"""Configuration: presets, defaults and clear errors."""
import dataclasses
import re

import numpy as np
import pytest

from bitflip_lib.config import PRESETS, TrainConfig, make_config


# The settings of the code that printed the write-up's Table 1 counts: louis845/BitSeqRLToyProblem
# at commit 925dc9f, run through src/runtime.py's train_DQN_agent by the two notebooks
# bitflipping_dqn_target_her_implementation.ipynb and bitflipping_dqn_target_implementation.ipynb,
# which pass only n, the device, episodes=3000, use_HER and model_type. Each line cites where.
WRITEUP_CODE = [
    ("gamma", 0.9),                      # src/agents/agent_dqn_target.py:32  gamma: float=0.9
    ("lr", 1e-3),                        # agent_dqn_target.py:36  learning_rate: float=0.001
    ("amsgrad", True),                   # agent_dqn_target.py:48  optim.Adam(..., amsgrad=True); its weight_decay (l.37) is never passed
    ("polyak", 0.01),                    # agent_dqn_target.py:31,144  tau=0.99: target <- 0.99 target + 0.01 online, every gradient step
    ("clip_targets", True),              # agent_dqn_target.py:127  target.clip(0.0, 1.0)
    ("loss", "mse"),                     # agent_dqn_target.py:130  nn.functional.mse_loss
    ("double_dqn", False),               # agent_dqn_target.py:126  max over the target network's own values
    ("batch_size", 2048),                # src/runtime.py:28  batch_size: int=2048 (no notebook overrides it)
    ("batch_without_replacement", True), # src/models/buffer_bitflipping_target.py:163-170  np.random.choice(..., replace=False)
    ("gradient_steps", 5),               # agent_dqn_target.py:110  def replay(self, batch_size, opt_steps=5)
    ("buffer_capacity", 2**15),          # runtime.py:39  max_buffer_size=2 ** 15
    ("num_train_agents", 16),            # runtime.py:27  num_explore_agents: int=16
    ("num_eval_agents", 1024),           # runtime.py:27  num_valid_agents: int=1024
    ("max_steps", None),                 # runtime.py:57  num_steps = n
    ("max_iterations", 3000),            # the notebooks' episodes=3000 (runtime.py:27's default is 10000)
    ("eval_every", 1),                   # runtime.py:99-123  an evaluation after every episode
    ("solved_threshold", 1.0),           # runtime.py:125  np.allclose(success_rates[-100:], 1.0): all 1024 agents
    ("solved_window", 100),              # runtime.py:125  the last 100 evaluations
    ("eps_start", 1.0),                  # agent_dqn_target.py:33
    ("eps_end", 0.1),                    # agent_dqn_target.py:34
    ("eps_decay", 0.999),                # agent_dqn_target.py:35, applied per gradient step at l.135
    ("eps_schedule", "exponential"),     # agent_dqn_target.py:135  max(epsilon * 0.999, 0.1)
    ("her", "writeup30"),                # src/agents/agent_dqn_target_her.py:25-63 (tests/test_her.py replays it)
    ("hidden", (128, 128)),              # src/models/model_dqn_bitflipping_target.py:61-63 (HAR), 18-20 (the MLP)
    ("activation", "gelu"),              # model_dqn_bitflipping_target.py:74-75 (HAR), 25-26 (the MLP)
    ("har_normalize_distance", False),   # model_dqn_bitflipping_target.py:67-68  the raw sum of squared differences
    # Left at the library's defaults, which are what the code does:
    ("lr_end", None),                    # agent_dqn_target.py:48  no learning-rate schedule
    ("early_stop", True),                # runtime.py:125-128  break at the first complete streak
    # (and plain DQN targets: the writeup preset is a TrainConfig, which has no study settings)
]


@pytest.mark.parametrize("field, value", WRITEUP_CODE, ids=[f for f, _ in WRITEUP_CODE])
def test_writeup_preset_is_the_writeup_code(field, value):
    assert getattr(make_config("writeup", n=20), field) == value


def test_writeup_preset_leaves_nothing_else_at_a_value_the_code_does_not_have():
    # Every setting the preset does not list keeps the library's default; the ones a run of the
    # write-up's code fixes are all pinned above, so a new field cannot slip in unpinned.
    pinned = {field for field, _ in WRITEUP_CODE}
    assert set(PRESETS["writeup"]) <= pinned
    unpinned = {f.name for f in dataclasses.fields(TrainConfig)} - pinned
    # n, arch and seed are the cell; k is unused by writeup30; the rest do not change what is computed.
    assert unpinned == {"n", "arch", "k", "seed", "max_seconds", "eps_decay_steps", "device", "preset"}


def test_writeup_v1_is_the_writeup_preset_with_the_first_reading_s_four_differences():
    code, first = make_config("writeup", n=20).to_dict(), make_config("writeup_v1", n=20).to_dict()
    differ = {key: (first[key], code[key]) for key in code if code[key] != first[key]}
    assert differ == {"her": ("writeup30-whole", "writeup30"), "batch_size": (256, 2048),
                      "batch_without_replacement": (False, True), "hidden": (None, (128, 128)),
                      "activation": ("relu", "gelu"), "preset": ("writeup_v1", "writeup")}


def test_automatic_gamma_approaches_one_with_n():
    assert make_config(n=10).effective_gamma == 0.98
    assert make_config(n=1000).effective_gamma == pytest.approx(0.999)
    assert make_config(n=10, gamma=0.5).effective_gamma == 0.5


BAD_VALUES = [  # (field, value, words of the message that say what is allowed)
    ("n", 0, "an integer >= 1"),
    ("n", 2.0, "an integer >= 1"),
    ("arch", "cnn", "one of uvfa, mlp, har"),
    ("her", "always", "one of none, final, future, episode, writeup30, writeup30-whole"),
    ("activation", "tanh", "one of relu, gelu"),
    ("batch_without_replacement", 1, "True or False"),
    ("k", 0, "an integer >= 1"),
    ("seed", 1.5, "an integer >= 0"),  # was a torch error that did not name the field
    ("seed", -1, "an integer >= 0"),
    ("seed", True, "an integer >= 0"),
    ("seed", 2**63, "below 2**63"),
    ("gamma", 1.5, "(0, 1]"),
    ("gamma", 0.0, "(0, 1]"),
    ("gamma", "0.9", "(0, 1]"),  # was a TypeError from a comparison
    ("gamma", float("nan"), "(0, 1]"),
    ("lr", 0.0, "(0, 1]"),
    ("lr", float("inf"), "(0, 1]"),
    ("lr", 1e308, "(0, 1]"),  # Adam's step overflowed in torch
    ("lr", "1e-3", "(0, 1]"),
    ("lr_end", 0.01, "(0, lr = 0.001]"),  # above the default lr 1e-3: that is not a decay
    ("amsgrad", 1, "True or False"),
    ("polyak", 0.0, "(0, 1]"),
    ("polyak", 1.5, "(0, 1]"),
    ("clip_targets", "no", "True or False"),  # was taken as true
    ("loss", "l1", "one of mse, huber"),
    ("double_dqn", None, "True or False"),
    ("batch_size", 0, "an integer >= 1"),
    ("gradient_steps", -1, "an integer >= 0"),
    ("buffer_capacity", 0, "an integer >= 1"),
    ("num_train_agents", 0, "an integer >= 1"),
    ("num_eval_agents", 10.0, "an integer >= 1"),
    ("max_steps", 0, "an integer >= 1 or None"),
    ("max_steps", True, "an integer >= 1 or None"),
    ("max_iterations", 0, "an integer >= 1"),
    ("max_seconds", -5, "a finite number > 0"),
    ("max_seconds", 0, "a finite number > 0"),
    ("max_seconds", float("inf"), "a finite number > 0"),  # was accepted: a budget that never ends
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


STUDY_BAD_VALUES = [
    ("hindsight_bound", 1, "True or False"),
    ("action_gap", 1.0, "[0, 1)"),  # alpha = 1 has no fixed point
    ("action_gap", -0.1, "[0, 1)"),
    ("action_gap", True, "[0, 1)"),
]


@pytest.mark.parametrize("field, value, allowed", STUDY_BAD_VALUES, ids=[f"{f}={v!r}" for f, v, _ in STUDY_BAD_VALUES])
def test_every_bad_study_value_is_refused_naming_the_field_value_and_what_is_allowed(field, value, allowed):
    from bitflip_lib.lab.studies import STUDY_FIELDS, make_run_config

    assert set(STUDY_FIELDS) == {f for f, _, _ in STUDY_BAD_VALUES}
    with pytest.raises(ValueError) as caught:
        make_run_config(**{field: value})
    message = str(caught.value)
    assert message.startswith(f"{field} must be "), message
    assert f"got {value!r}" in message and allowed in message, message


def test_double_dqn_without_a_target_network_is_refused_not_ignored():
    with pytest.raises(ValueError, match="^double_dqn=True needs a target network"):
        make_config(double_dqn=True, polyak=None)


def test_make_config_refuses_the_issue_cases_before_training():
    for bad in ({"eps_decay": -0.5}, {"eps_decay": 1.5}, {"hidden": (0,)}, {"hidden": (-4,)}, {"seed": 1.5},
                {"gamma": "0.9"}, {"clip_targets": "no"}):
        (field, value), = bad.items()
        with pytest.raises(ValueError, match=f"^{field} must be .* got {re.escape(repr(value))}"):
            make_config(**bad)
    assert make_config(clip_targets=False).clip_targets is False


def test_edge_values_that_are_valid_stay_valid():
    make_config(gamma=1, polyak=1.0, eps_decay=1.0, solved_threshold=0.0, eps_end=0.0, gradient_steps=0,
                max_steps=1, lr_end=1e-3, hidden=[8, 8], seed=2**63 - 1, device="cpu", max_seconds=0.5)
    make_config(gamma=np.float64(0.9), lr=np.float32(1e-3), polyak=None, max_steps=None, hidden=None)
    make_config("writeup", n=1024, arch="uvfa", her="none", loss="huber", eps_schedule="linear")


def test_replace_validates_too():
    with pytest.raises(ValueError, match="^gamma must be"):
        make_config().replace(gamma=2.0)


def test_a_configuration_cannot_be_changed_after_it_was_checked_only_replaced():
    # Checked once, when made: so nothing unchecked can reach train(), which trusts it.
    config = make_config(n=3, max_iterations=1, device="cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.clip_targets = "no"
    with pytest.raises(ValueError, match="^clip_targets must be True or False"):
        config.replace(clip_targets="no")
    assert config.replace(clip_targets=False).clip_targets is False and config.clip_targets is True


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("best")
    with pytest.raises(ValueError, match="unknown configuration field"):
        make_config(learning_rate=0.1)
    assert set(PRESETS) >= {"default", "writeup"}
