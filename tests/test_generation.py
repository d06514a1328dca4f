"""Generation under sparse rewards (chapters 8 and 9): environment, policy, estimators, losses, exact enumeration."""
from __future__ import annotations

import io
import json
import math
import time

import pytest
import torch

from bitflip_lib.generation.sequences import (
    AutoregressivePolicy,
    DenseReward,
    DistanceScore,
    GenerationEnv,
    MultiModalReward,
    SparseReward,
    all_strings,
    conditional_log_probs,
    dpo_loss,
    empirical_distribution,
    exact_log_probs,
    hindsight_loss,
    kl_divergence,
    kl_optimum,
    kl_regularised_reward,
    make_reward,
    policy_from_soft_q,
    random_success_probability,
    reinforce_loss,
    reward_distribution,
    rollout,
    soft_values,
    string_index,
    total_variation,
    trajectory_balance_loss,
)
from bitflip_lib.generation.training import (
    GenerateConfig,
    GeneratorTraining,
    parameters_vector,
    seeded_policy,
    train_generator,
    train_hindsight,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def _policy(L: int = 4, seed: int = 0, condition_length: int = 0) -> AutoregressivePolicy:
    return seeded_policy(L, (16,), seed, torch.device("cpu"), condition_length)


def _grad(policy: torch.nn.Module, loss: torch.Tensor) -> torch.Tensor:
    policy.zero_grad()
    loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in policy.parameters()])


# --- environment and rewards ---------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_env_appends_bits_and_pays_only_at_the_end(device):
    target = torch.tensor([1.0, 0.0, 1.0])
    env = GenerationEnv(SparseReward(target), num_agents=2, device=device)
    tokens = env.reset()
    assert tokens.shape == (2, 3) and env.t == 0
    for t, bits in enumerate(([1, 0], [0, 0], [1, 1])):
        step = env.step(torch.tensor(bits, device=device))
        assert step.done == (t == 2)
        if not step.done:
            assert float(step.reward.abs().sum()) == 0.0
    assert step.tokens.tolist() == [[1, 0, 1], [0, 0, 1]]
    assert step.reward.tolist() == [1.0, 0.0]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.tensor([0, 0], device=device))


def test_env_and_rewards_validate_inputs():
    reward = SparseReward(torch.tensor([1.0, 0.0]))
    env = GenerationEnv(reward, num_agents=2)
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.step(torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="bits"):
        env.step(torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="num_agents"):
        GenerationEnv(reward, num_agents=0)
    with pytest.raises(ValueError, match="zeros and ones"):
        SparseReward(torch.tensor([0.0, 3.0]))
    with pytest.raises(ValueError, match="sharpness"):
        DenseReward(torch.tensor([0.0, 1.0]), sharpness=0.0)
    with pytest.raises(ValueError, match="reward must be one of"):
        make_reward("bogus", 4)
    with pytest.raises(ValueError, match="length"):
        make_reward("sparse", 0)
    with pytest.raises(ValueError, match="shape"):
        reward(torch.zeros(3, 5))


def test_random_success_is_two_to_the_minus_L():
    L = 6
    reward = make_reward("sparse", L, seed=3)
    policy = _policy(L)
    with torch.no_grad():  # a uniform policy: zero the last layer
        policy.net[-1].weight.zero_()
        policy.net[-1].bias.zero_()
    assert random_success_probability(L) == 2.0**-L
    assert math.isclose(float(exact_log_probs(policy).exp()[reward.is_success(all_strings(L))].sum()), 2.0**-L, rel_tol=1e-6)
    env = GenerationEnv(reward, num_agents=20000)
    y, r = rollout(env, policy, torch.Generator().manual_seed(0))
    rate = float(r.mean())
    assert abs(rate - 2.0**-L) < 4 * math.sqrt(2.0**-L / 20000)


def test_rewards_shapes_and_values():
    target = torch.tensor([1.0, 1.0, 0.0, 0.0])
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    assert SparseReward(target, floor=0.1)(y).tolist() == pytest.approx([1.1, 0.1])
    assert DenseReward(target, sharpness=0.5)(y).tolist() == pytest.approx([1.0, math.exp(-1.0)])
    assert DistanceScore(target)(y).tolist() == [0.0, -2.0]
    modes = torch.stack([target, 1 - target])
    mm = MultiModalReward(modes, sharpness=math.inf, floor=0.01)
    assert mm(torch.stack([target, 1 - target, y[1]])).tolist() == pytest.approx([1.01, 1.01, 0.01])
    assert mm.mode_index(torch.stack([target, 1 - target, y[1]])).tolist() == [0, 1, -1]
    assert make_reward("multimodal", 6, num_modes=5).num_modes == 5


# --- the policy ----------------------------------------------------------------------------------


def test_step_logits_agree_with_teacher_forcing_and_sampling_with_the_env():
    L = 5
    policy = _policy(L, seed=1)
    y = (torch.rand(7, L, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    all_logits = policy.all_logits(y)
    for t in range(L):
        prefix = y.clone()
        prefix[:, t:] = 0
        assert torch.allclose(policy.step_logits(prefix, t), all_logits[:, t], atol=1e-6)
    # The policy's own sampler and a rollout in the environment write the same strings.
    env = GenerationEnv(make_reward("sparse", L), num_agents=50)
    a = policy.sample(50, torch.Generator().manual_seed(4))
    b, _ = rollout(env, policy, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


def test_exact_probabilities_sum_to_one_and_match_sampling():
    L = 6
    policy = _policy(L, seed=2)
    p = exact_log_probs(policy).exp()
    assert p.shape == (2**L,)
    assert abs(float(p.sum()) - 1.0) < 1e-5
    samples = policy.sample(40000, torch.Generator().manual_seed(0))
    assert total_variation(empirical_distribution(samples), p) < 0.05
    assert torch.equal(string_index(all_strings(L)), torch.arange(2**L))


def test_conditioned_policy_needs_its_instruction():
    policy = _policy(4, condition_length=4)
    y = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="instruction"):
        policy.log_prob(y)
    with pytest.raises(ValueError, match="no instruction"):
        _policy(4).log_prob(y, condition=y)
    assert policy.log_prob(y, condition=y).shape == (3,)


# --- REINFORCE -----------------------------------------------------------------------------------


def test_all_zero_rewards_give_exactly_zero_without_baseline_and_with_the_batch_mean():
    policy = _policy(6)
    y = policy.sample(32, torch.Generator().manual_seed(0))
    zeros = torch.zeros(32)
    for baseline in ("none", "mean"):
        g = _grad(policy, reinforce_loss(policy.log_prob(y), zeros, baseline))
        assert bool((g == 0).all()), baseline
    # A constant baseline gives a nonzero estimate on the same batch.
    g = _grad(policy, reinforce_loss(policy.log_prob(y), zeros, 0.5))
    assert float(g.abs().max()) > 0


def test_constant_baseline_only_adds_zero_mean_noise():
    """Exactly: sum_y pi(y) grad log pi(y) = 0 (enumeration). Statistically: many batches average to zero."""
    L = 5
    policy = _policy(L, seed=3)
    strings = all_strings(L)
    probs = exact_log_probs(policy).exp().float()
    exact = _grad(policy, -(probs.detach() * policy.log_prob(strings)).sum())
    assert float(exact.abs().max()) < 1e-5
    generator = torch.Generator().manual_seed(0)
    estimates = []
    for _ in range(400):
        y = policy.sample(16, generator)
        estimates.append(_grad(policy, reinforce_loss(policy.log_prob(y), torch.zeros(16), 1.0)))
    g = torch.stack(estimates)
    mean, stderr = g.mean(0), g.std(0) / math.sqrt(len(g))
    assert float(g.norm(dim=1).min()) > 0  # every single estimate is noise, not zero
    z = (mean / stderr.clamp_min(1e-12))[stderr > 1e-8]
    assert float(z.abs().max()) < 5.0  # no coordinate's mean is far from zero
    assert abs(float(z.mean())) < 0.2  # and they centre on zero


def test_baseline_does_not_change_the_expected_gradient():
    L = 4
    policy = _policy(L, seed=4)
    strings = all_strings(L)
    probs = exact_log_probs(policy).exp().float().detach()
    rewards = make_reward("dense", L, seed=1)(strings)
    g_none = _grad(policy, -(probs * rewards * policy.log_prob(strings)).sum())
    g_const = _grad(policy, -(probs * (rewards - 0.7) * policy.log_prob(strings)).sum())
    assert torch.allclose(g_none, g_const, atol=1e-5)


def test_reinforce_loss_matches_a_hand_computation_and_validates():
    logp = torch.tensor([-1.0, -2.0, -3.0], requires_grad=True)
    r = torch.tensor([1.0, 0.0, 2.0])
    assert float(reinforce_loss(logp, r, "none").detach()) == pytest.approx((1 * 1 + 0 + 2 * 3) / 3)
    assert float(reinforce_loss(logp, r, "mean").detach()) == pytest.approx(-((0 * -1) + (-1 * -2) + (1 * -3)) / 3)
    with pytest.raises(ValueError, match="baseline"):
        reinforce_loss(logp, r, "median")
    with pytest.raises(ValueError, match="shape"):
        reinforce_loss(logp, r[:2])


def test_sparse_reinforce_at_L20_sees_nothing_and_changes_nothing():
    config = GenerateConfig(method="reinforce", length=20, steps=20, batch_size=32, eval_every=20, eval_samples=64)
    policy = seeded_policy(20, config.hidden, config.seed, torch.device("cpu"))
    before = parameters_vector(policy)
    result = train_generator(config, policy=policy)
    assert result.rewards_seen == 0
    assert torch.equal(parameters_vector(result.policy), before)


def test_reinforce_learns_a_short_target():
    config = GenerateConfig(method="reinforce", length=4, steps=80, batch_size=64, lr=3e-3, eval_every=80, eval_samples=256)
    assert train_generator(config).final["success"] > 0.9


# --- KL, DPO, soft Q -----------------------------------------------------------------------------


def test_kl_optimum_maximises_the_regularised_objective():
    L, beta = 4, 0.5
    ref = exact_log_probs(_policy(L, seed=5))
    rewards = make_reward("dense", L, seed=2)(all_strings(L)).double()
    star = kl_optimum(ref, rewards, beta)
    assert abs(float(star.sum()) - 1) < 1e-12

    def objective(p):
        return float((p * rewards).sum()) - beta * kl_divergence(p, ref.exp())

    best = objective(star)
    assert best == pytest.approx(beta * float(torch.logsumexp(ref + rewards / beta, 0)))  # = beta log Z
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        other = torch.softmax(torch.log(star) + 0.3 * torch.randn(2**L, generator=generator, dtype=torch.float64), 0)
        assert objective(other) < best


def test_soft_q_policy_equals_the_kl_optimum():
    L, beta = 5, 0.7
    ref_policy = _policy(L, seed=6)
    rewards = make_reward("dense", L, seed=3)(all_strings(L)).double()
    ref_cond = conditional_log_probs(ref_policy)
    V, Q = soft_values(rewards, ref_cond, beta)
    star = kl_optimum(exact_log_probs(ref_policy), rewards, beta)
    assert total_variation(policy_from_soft_q(V, Q, ref_cond, beta), star) < 1e-6
    assert float(V[0][0]) == pytest.approx(beta * float(torch.logsumexp(exact_log_probs(ref_policy) + rewards / beta, 0)), abs=1e-5)
    small = soft_values(rewards, ref_cond, 1e-3)[0][0][0]
    assert float(small) == pytest.approx(float(rewards.max()), abs=0.02)  # soft max -> max as beta -> 0


def test_kl_regularised_reward_and_dpo_loss_by_hand():
    r, lp, ref = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0])
    assert kl_regularised_reward(r, lp, ref, 2.0).tolist() == pytest.approx([0.0, 2.0])
    loss = dpo_loss(torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([-1.5]), torch.tensor([-1.5]), beta=0.5)
    assert float(loss) == pytest.approx(-math.log(1 / (1 + math.exp(-0.5 * (0.5 - (-0.5))))))
    with pytest.raises(ValueError, match="beta"):
        kl_optimum(torch.zeros(2), torch.zeros(2), 0.0)


def test_kl_training_approaches_the_optimum():
    config = GenerateConfig(method="kl", length=6, reward="distance", beta=1.0, steps=150, batch_size=128, lr=2e-3,
                            eval_every=75, eval_samples=64)
    tv = [h["tv"] for h in train_generator(config).history]
    assert tv[0] > 0.3 and tv[-1] < 0.05 and tv[-1] < tv[0]


# --- trajectory balance --------------------------------------------------------------------------


def test_trajectory_balance_loss_by_hand():
    log_Z = torch.tensor(0.5)
    log_pf = torch.tensor([-1.0, -2.0])
    log_r = torch.tensor([-0.25, -3.0])
    expected = ((0.5 - 1.0 + 0.25) ** 2 + (0.5 - 2.0 + 3.0) ** 2) / 2
    assert float(trajectory_balance_loss(log_Z, log_pf, log_r)) == pytest.approx(expected)
    assert float(trajectory_balance_loss(log_Z, log_pf, log_r, log_pb=torch.tensor([0.0, -1.0]))) == pytest.approx(
        ((0.5 - 1.0 + 0.25) ** 2 + (0.5 - 2.0 + 3.0 + 1.0) ** 2) / 2)
    with pytest.raises(ValueError, match="shape"):
        trajectory_balance_loss(log_Z, log_pf, log_r[:1])


def test_trajectory_balance_is_zero_exactly_at_the_reward_distribution():
    """A tabular sampler with P_F(y) = R(y) / Z and log Z = log sum R has zero loss on every string."""
    L = 4
    reward = make_reward("multimodal", L, num_modes=2, floor=0.01)
    strings = all_strings(L)
    target = reward_distribution(reward)
    log_Z = torch.log(reward(strings).sum())
    loss = trajectory_balance_loss(log_Z, target.log().float(), reward.log_reward(strings))
    assert float(loss) < 1e-10


def test_gflownet_matches_the_reward_distribution_and_learns_log_Z():
    config = GenerateConfig(method="gflownet", length=5, reward="multimodal", num_modes=2, steps=300, batch_size=64,
                            lr=3e-3, log_z_lr=0.1, eval_every=300, eval_samples=64)
    result = train_generator(config)
    assert result.final["tv"] < 0.1
    assert float(result.log_Z) == pytest.approx(math.log(float(result.reward(all_strings(5)).sum())), abs=0.1)


def test_gflownet_refuses_a_sparse_reward_without_a_floor():
    with pytest.raises(ValueError, match="floor"):
        GenerateConfig(method="gflownet", reward="sparse")
    GenerateConfig(method="gflownet", reward="sparse", floor=1e-3)


# --- hindsight -----------------------------------------------------------------------------------


def test_hindsight_loss_is_the_negative_log_likelihood_of_relabelled_samples():
    policy = _policy(4, condition_length=4)
    y = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    assert float(hindsight_loss(policy, y)) == pytest.approx(-float(policy.log_prob(y, condition=y)))


def test_sparse_goal_conditioned_reinforce_learns_nothing_where_hindsight_learns():
    config = GenerateConfig(method="hindsight", length=20, steps=60, batch_size=64, lr=3e-3, hidden=(128,),
                            eval_every=60, eval_samples=128)
    plain = train_hindsight(config, relabel=False)
    start = seeded_policy(20, config.hidden, config.seed, torch.device("cpu"), condition_length=20)
    assert plain.rewards_seen == 0 and torch.equal(parameters_vector(plain.policy), parameters_vector(start))
    hindsight = train_hindsight(config)
    assert hindsight.final["bit_accuracy"] > 0.6 > plain.final["bit_accuracy"]


# --- exact helpers, config, CLI ------------------------------------------------------------------


def test_distances_between_distributions():
    p = torch.tensor([0.5, 0.5, 0.0])
    q = torch.tensor([0.25, 0.25, 0.5])
    assert total_variation(p, q) == pytest.approx(0.5)
    assert kl_divergence(p, q) == pytest.approx(math.log(2))
    assert kl_divergence(q, p) == math.inf
    with pytest.raises(ValueError, match="length"):
        all_strings(40)
    with pytest.raises(ValueError, match="same shape"):
        total_variation(p, q[:2])


@pytest.mark.parametrize("field, value, match", [
    ("method", "ppo", "method"), ("length", 0, "length"), ("steps", 0, "steps"), ("lr", -1.0, "lr"),
    ("epsilon", 1.5, "epsilon"), ("baseline", "loo", "baseline"), ("hidden", (), "hidden"), ("reward", "x", "reward"),
])
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        GenerateConfig(**{field: value})


def test_same_seed_same_run():
    config = GenerateConfig(method="reinforce", length=6, steps=10, batch_size=16, eval_every=5, eval_samples=32)
    a, b = train_generator(config), train_generator(config)
    assert [h["mean_reward"] for h in a.history] == [h["mean_reward"] for h in b.history]
    assert torch.equal(parameters_vector(a.policy), parameters_vector(b.policy))


def test_cli_generate_prints_one_json_line(capsys):
    from bitflip_lib.cli import main

    assert main(["generate", "--method", "gflownet", "--length", "4", "--reward", "multimodal", "--num-modes", "2",
                 "--steps", "4", "--eval-every", "2", "--eval-samples", "16"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["method"] == "gflownet" and summary["length"] == 4 and "tv" in summary and "log_Z" in summary
    assert "[generate]" in captured.err
    assert main(["generate", "--method", "gflownet", "--reward", "sparse", "--steps", "2"]) == 2
    assert "floor" in capsys.readouterr().err
    assert main(["generate", "--length", "0"]) == 2


def test_playground_trains_both_samplers_and_validates():
    import matplotlib

    matplotlib.use("Agg")
    from bitflip_lib.ui.playground import GenerationPlayground

    with pytest.raises(ValueError, match="length"):
        GenerationPlayground(length=12)
    with pytest.raises(ValueError, match="reward"):
        GenerationPlayground(reward="tokens")
    with pytest.raises(ValueError, match="methods"):
        GenerationPlayground(methods=("kl", "dqn"))
    with pytest.raises(ValueError, match="beta"):
        GenerationPlayground(beta=0.501)  # only the slider's values
    with pytest.raises(ValueError, match="seed must be an integer from 0 to 2147483647"):
        GenerationPlayground(seed=2**40)  # the seed box would clamp it
    play = GenerationPlayground(length=3, reward="sparse", steps=10, redraw_every=2, background=False)
    assert play.outcome == "untrained" and play.redraws == 1  # the untrained samplers are drawn at once
    assert "press <b>Train</b>" in play.status.value
    results = play.run(steps=4)
    assert set(results) == {"kl", "gflownet"} and play.error is None and play.outcome == "finished"
    assert play.redraws >= 4 and bytes(play.image.value[:4]) == b"\x89PNG"
    assert results["gflownet"].config.floor > 0  # the sparse reward gets a floor for the GFlowNet
    assert "Finished</b> all 4 steps" in play.status.value and "TV to target" in play.status.value


def test_playground_shows_the_value_chosen_and_a_readable_figure():
    import matplotlib

    matplotlib.use("Agg")
    from PIL import Image

    from bitflip_lib.ui.playground import BETAS, GenerationPlayground

    play = GenerationPlayground(methods=("reinforce", "kl"), beta=0.5, background=False)
    beta = play.controls["beta"]
    assert beta.value == 0.5 and beta.label == "0.5"  # not 0.501: the slider holds round numbers
    assert [value for _, value in beta.options] == list(BETAS)
    width, height = Image.open(io.BytesIO(play.image.value)).size
    assert width == 880 and 300 <= height <= 400  # the notebook's width, drawn 1:1 at 100 dpi
    before = bytes(play.image.value)
    play.controls["length"].value = 4  # the preview follows the controls
    assert bytes(play.image.value) != before and play.outcome == "untrained"
    assert GenerationPlayground(methods=("reinforce", "gflownet")).controls["beta"].disabled  # no KL panel


def test_playground_stop_leaves_every_panel_at_the_same_step():
    import matplotlib

    matplotlib.use("Agg")
    from bitflip_lib.ui.playground import GenerationPlayground

    play = GenerationPlayground(methods=("reinforce", "kl", "gflownet"), length=3, steps=200, redraw_every=10,
                                background=True)
    play.controls["steps"].value = 200
    play._on_train()
    thread = play._thread
    deadline = time.time() + 60
    while play.running and play.redraws < 3 and time.time() < deadline:
        time.sleep(0.02)
    assert play.running
    with pytest.raises(RuntimeError, match="already going on"):
        play.run(steps=10)  # one run at a time, under the dashboards' lock
    play._on_train()  # a second Train while running starts nothing
    assert play._thread is thread
    play.stop()
    play.wait(60)
    assert play.outcome == "stopped" and not play.running
    steps = {panel["step"] for panel in play.panels.values()}
    assert len(steps) == 1 and 0 < steps.pop() < 200  # all panels drawn, all at the step it stopped
    assert {result.final["step"] for result in play.results.values()} == {play.panels["kl"]["step"]}
    assert f"at step {play.panels['kl']['step']} of 200" in play.status.value
    assert not play.train_button.disabled and play.stop_button.disabled
    assert not play.controls["length"].disabled


def test_generator_training_advances_one_evaluation_at_a_time_like_train_generator():
    config = GenerateConfig(method="kl", length=4, reward="distance", steps=20, eval_every=5, eval_samples=32,
                            hidden=(16,), device="cpu")
    whole = train_generator(config)
    run = GeneratorTraining(config)
    records = [next(run) for _ in range(3)]
    assert [r["step"] for r in records] == [0, 5, 10] and run.result.history == records
    rest = list(run)
    assert [r["step"] for r in rest] == [15, 20]
    assert run.result.history == whole.history
    assert torch.equal(parameters_vector(run.result.policy), parameters_vector(whole.policy))
    with pytest.raises(ValueError, match="train_hindsight"):
        GeneratorTraining(config.replace(method="hindsight"))
