"""``bitflip generate``: train one generator of chapters 8 and 9 from the command line.

::

    bitflip generate --method reinforce --length 8 --reward sparse --steps 300
    bitflip generate --method gflownet --length 8 --reward multimodal --steps 400
    bitflip generate --method kl --length 8 --reward distance --beta 1
    bitflip generate --method hindsight --length 50 --steps 300 --hidden 256 256 --lr 3e-3 --batch-size 128

Progress (one line per evaluation) goes to stderr, the summary as one JSON line to stdout.
Registered in :mod:`bitflip_lib.cli` by :func:`add_generate_parser`.
"""
from __future__ import annotations

import argparse
import json
import sys

from bitflip_lib.generation.sequences import REWARD_KINDS
from bitflip_lib.generation.training import METHODS, GenerateConfig, train_generator


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_generate_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``generate`` sub-command to ``bitflip``'s sub-parsers; returns its parser."""
    d = GenerateConfig()
    p = subparsers.add_parser("generate", help="train a generator of bit strings (chapters 8-9); prints one JSON line")
    p.add_argument("--method", choices=METHODS, default=d.method, help="learning rule")
    p.add_argument("--length", type=_positive_int, default=d.length, help="bits per string (L)")
    p.add_argument("--reward", choices=REWARD_KINDS, default=d.reward, help="terminal reward (the target is hidden in it)")
    p.add_argument("--steps", type=_positive_int, default=d.steps, help="gradient steps")
    p.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="strings (or preference pairs) per step")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate of the policy")
    p.add_argument("--log-z-lr", type=float, default=d.log_z_lr, help="learning rate of log Z (gflownet)")
    p.add_argument("--hidden", type=_positive_int, nargs="+", default=list(d.hidden), help="hidden widths of the policy")
    p.add_argument("--baseline", choices=("mean", "none"), default=d.baseline, help="REINFORCE baseline")
    p.add_argument("--beta", type=float, default=d.beta, help="KL weight (kl, dpo)")
    p.add_argument("--epsilon", type=float, default=d.epsilon, help="probability of a uniform bit while sampling for training")
    p.add_argument("--num-pairs", type=_positive_int, default=d.num_pairs, help="preference pairs (dpo)")
    p.add_argument("--sharpness", type=float, help="reward sharpness (dense, multimodal; 'inf' for exact matches)")
    p.add_argument("--floor", type=float, help="reward floor (sparse, multimodal)")
    p.add_argument("--num-modes", type=_positive_int, default=d.num_modes, help="targets of the multimodal reward")
    p.add_argument("--eval-every", type=_positive_int, default=d.eval_every, help="steps between evaluations")
    p.add_argument("--eval-samples", type=_positive_int, default=d.eval_samples, help="samples per evaluation")
    p.add_argument("--seed", type=int, default=d.seed, help="the one seed (targets, weights, samples)")
    p.add_argument("--device", default=d.device, help="auto (CUDA when available), cpu, cuda...")
    p.add_argument("--threads", type=_positive_int, help="CPU threads for torch")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run_generate)
    return p


def config_from_args(args: argparse.Namespace) -> GenerateConfig:
    """The :class:`GenerateConfig` of parsed arguments (ValueError naming the bad field)."""
    return GenerateConfig(method=args.method, length=args.length, reward=args.reward, steps=args.steps,
                          batch_size=args.batch_size, lr=args.lr, log_z_lr=args.log_z_lr, hidden=tuple(args.hidden),
                          baseline=args.baseline, beta=args.beta, epsilon=args.epsilon, num_pairs=args.num_pairs,
                          sharpness=args.sharpness, floor=args.floor, num_modes=args.num_modes,
                          eval_every=args.eval_every, eval_samples=args.eval_samples, seed=args.seed, device=args.device)


def run_generate(args: argparse.Namespace) -> int:
    """Run ``bitflip generate``: progress on stderr, one JSON summary line on stdout; returns 0."""
    config = config_from_args(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    def progress(record: dict, _policy) -> None:
        if not args.quiet:
            shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items() if k != "mode_mass"}
            print(f"[generate] {json.dumps(shown)}", file=sys.stderr, flush=True)

    result = train_generator(config, callback=progress)
    print(json.dumps(result.summary()), flush=True)
    return 0
