"""Checks for exercise 6: the handcrafted architecture (HAR) as a torch module.

The student writes ``class HARNetwork(nn.Module)`` with ``__init__(hidden=(64, 64),
normalize_distance=True)``, an attribute ``phi`` (an MLP from the two inputs
``(distance feature, bit differs)`` to one value) and ``forward(state, goal) -> [B, n]`` with
``Q(s, g, a) = phi(||s - g||_1 [/ n], |s_a - g_a|)``. Reference: :class:`bitflip_lib.networks.HAR`,
whose ``phi`` reads the same pair in the other order, (bit differs, distance feature): the checks
swap the two input columns of its first layer when they copy its weights.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from bitflip_lib.config import make_config
from bitflip_lib.grading.helpers import devices, expect, expect_close, expect_tensor, generator
from bitflip_lib.grading.errors import first_line
from bitflip_lib.grading.model import Check, Exercise
from bitflip_lib.grading.remote import kind
from bitflip_lib.networks import HAR
from bitflip_lib.trainer import evaluate, train


START_SEED = 4
"""The end-to-end check starts every network from the library HAR initialised with this seed: its
greedy policy is far from optimal at n = 20 whichever order phi reads its two inputs in (success
0.00 both ways, asserted in tests/test_graders.py), so solving the task takes learning."""


def _build(ns: Mapping, seed: int = 0, **kwargs) -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # seeded, without disturbing the notebook's own random state
        torch.manual_seed(seed)
        net = ns["HARNetwork"](**kwargs)
    expect(isinstance(net, nn.Module), f"HARNetwork(...) should be a torch.nn.Module, got {kind(net)}")
    return net


def swap_phi_inputs(weights: dict) -> dict:
    """phi's weights with its two inputs swapped: the exercise's order (distance feature, bit
    differs) and the library's (bit differs, distance feature) are each other's swap."""
    first = next(key for key in weights if key.endswith("weight"))
    return {**weights, first: weights[first][:, [1, 0]]}


def library_phi_weights(seed: int, hidden: tuple[int, ...] = (64, 64), normalize: bool = True) -> tuple[HAR, dict]:
    """The library HAR built from ``seed``, and its phi's weights in the exercise's input order
    (distance feature, bit differs): the library's phi reads (bit differs, distance feature)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        reference = HAR(hidden=hidden, normalize_distance=normalize)
    return reference, swap_phi_inputs(reference.phi.state_dict())


def _inputs(batch: int, n: int, seed: int, device="cpu"):
    g = generator(seed, device)
    state = torch.randint(0, 2, (batch, n), generator=g, device=device).float()
    goal = torch.randint(0, 2, (batch, n), generator=g, device=device).float()
    return state, goal


def check_module(ns: Mapping) -> str:
    net = _build(ns)
    params = [p for p in net.parameters() if p.requires_grad]
    expect(len(params) > 0, "HARNetwork has no trainable parameters: build phi from nn.Linear layers in __init__")
    expect(isinstance(getattr(net, "phi", None), nn.Module), "HARNetwork needs an attribute phi (an nn.Module mapping [..., 2] -> [..., 1])")
    out = net.phi(torch.rand(5, 2, generator=generator(0)))
    expect_tensor(out, "phi(torch.rand(5, 2))", shape=(5, 1))
    count = sum(p.numel() for p in params)
    expect(count == 2 * 64 + 64 + 64 * 64 + 64 + 64 + 1, f"with hidden=(64, 64), phi should be Linear(2, 64), ReLU, Linear(64, 64), ReLU, Linear(64, 1): "
           f"{2 * 64 + 64 + 64 * 64 + 64 + 64 + 1} parameters, got {count}")
    return f"a module with {count} parameters"


def check_shapes(ns: Mapping) -> str:
    net = _build(ns)
    for device in devices():
        net = net.to(device)
        for n in (1, 7, 50):  # one network, any number of bits
            state, goal = _inputs(9, n, n, device)
            out = expect_tensor(net(state, goal), f"forward on [9, {n}] inputs", shape=(9, n), device=device)
            expect(out.dtype == torch.float32, f"forward should return float32 Q-values, got {out.dtype}")
    return "[B, n] for any n, on every device"


def check_matches_library(ns: Mapping) -> str:
    for normalize in (True, False):
        net = _build(ns, hidden=(16, 16), normalize_distance=normalize)
        reference, weights = library_phi_weights(1, (16, 16), normalize)
        try:
            net.phi.load_state_dict(weights)
        except (RuntimeError, KeyError) as err:
            raise AssertionError(f"could not load the library HAR's phi weights into yours (build phi as nn.Sequential of Linear/ReLU layers): {err}") from err
        for n in (3, 20):
            state, goal = _inputs(32, n, 40 + n)
            state[0] = goal[0]  # distance 0 row
            expect_close(net(state, goal), reference(state, goal),
                         f"Q-values with the library HAR's phi weights (n={n}, normalize_distance={normalize}; "
                         f"phi's inputs in the order (distance feature, bit differs)?)", atol=1e-5)
    return "same values as bitflip_lib.networks.HAR"


def check_equivariance(ns: Mapping) -> str:
    net = _build(ns, seed=3)
    state, goal = _inputs(16, 12, 5)
    perm = torch.randperm(12, generator=generator(6))
    out = net(state, goal)
    permuted = net(state[:, perm], goal[:, perm])
    expect_close(permuted, out[:, perm], "Q(permuted state, permuted goal) should equal the permuted Q(state, goal)", atol=1e-5)
    flipped = net(1 - state, 1 - goal)  # only whether bits differ matters, not their values
    expect_close(flipped, out, "Q(1 - state, 1 - goal) should equal Q(state, goal): only |s - g| matters", atol=1e-5)
    return "permutation equivariant, depends only on |s - g|"


def check_gradients(ns: Mapping) -> str:
    net = _build(ns)
    state, goal = _inputs(8, 6, 7)
    net(state, goal).pow(2).mean().backward()
    missing = [name for name, p in net.named_parameters() if p.requires_grad and (p.grad is None or not bool(p.grad.abs().sum() > 0))]
    expect(not missing, f"no gradient reached {', '.join(missing)}: is every parameter used in forward (without .detach())?")
    return "gradients reach every parameter"


def check_training(ns: Mapping) -> str:
    config = make_config(n=20, arch="har", her="future", max_iterations=60, seed=START_SEED)
    net = _build(ns, seed=START_SEED)
    try:
        net.phi.load_state_dict(library_phi_weights(START_SEED)[1])
    except (RuntimeError, KeyError, AttributeError) as err:
        raise AssertionError("could not start from the check's weights (phi must be Linear(2, 64), ReLU, Linear(64, 64), "
                             f"ReLU, Linear(64, 1), as nn.Sequential): {first_line(str(err))}") from err
    before = evaluate(net, 20, num_agents=512, seed=5, device=next(net.parameters()).device)["success_rate"]
    expect(before < config.solved_threshold,
           f"with the check's starting weights your network already succeeds {before:.2f} at n = 20 before any training "
           "(a HAR as the exercise describes starts at 0.00), so this check cannot see it learn: does phi read "
           "(distance feature, bit differs), in that order?")
    result = train(config, network=net, progress=False)
    expect(result.solved_at is not None, f"train(..., network=HARNetwork()) should solve n = 20 within {config.max_iterations} iterations "
           f"(success {result.final.get('success_rate')})")
    # The verdict is the library's HAR holding the weights trained here: your forward pass does not judge itself.
    trained = HAR(hidden=(64, 64))
    weights = {k: v.detach().clone() for k, v in result.network.phi.state_dict().items()}
    trained.phi.load_state_dict(swap_phi_inputs(weights))  # back to the library's input order
    at_20 = evaluate(trained, 20, num_agents=1024, seed=5)["success_rate"]
    expect(at_20 >= config.solved_threshold, f"the trained weights in the library's HAR succeed {at_20:.3f} at n = 20 "
           f"(want >= {config.solved_threshold}): does your forward compute phi(distance feature, bit differs) as the exercise says?")
    after_50 = evaluate(trained, 50, num_agents=512, seed=5)["success_rate"]
    expect(after_50 >= 0.9, f"a HAR trained at n = 20 should transfer to n = 50 unchanged; greedy success at n = 50 was {after_50:.3f}")
    return f"solves n = 20 at iteration {result.solved_at} (success {before:.2f} before training), {after_50:.2f} at n = 50 unchanged"


EXERCISE = Exercise(
    name="ex06_har",
    title="The handcrafted architecture (HAR)",
    required=("HARNetwork",),
    references=("bitflip_lib.networks:HAR",),
    budget=120.0,  # end-to-end: the student's code runs in its own process, and every step of it is checked
    checks=(
        Check("an nn.Module with phi", check_module),
        Check("output shape for any n", check_shapes),
        Check("same values as the library HAR", check_matches_library),
        Check("symmetries", check_equivariance),
        Check("gradients flow", check_gradients),
        Check("trains and transfers (end to end)", check_training, timeout=240.0, slow=True),
    ),
)
