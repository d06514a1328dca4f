"""Configuration: presets, defaults and clear errors."""
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


@pytest.mark.parametrize("field, value, message", [
    ("n", 0, "n must be an integer >= 1"),
    ("arch", "cnn", "unknown architecture"),
    ("her", "always", "unknown HER strategy"),
    ("gamma", 1.5, "gamma"),
    ("polyak", 0.0, "polyak"),
    ("batch_size", 0, "batch_size"),
    ("loss", "l1", "loss"),
    ("lr_end", 0.01, "lr_end must be in"),  # above the default lr 1e-3: that is not a decay
])
def test_bad_values_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("best")
    with pytest.raises(ValueError, match="unknown configuration field"):
        make_config(learning_rate=0.1)
    assert set(PRESETS) >= {"default", "writeup"}
