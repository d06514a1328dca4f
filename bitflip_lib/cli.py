"""The ``bitflip`` command line (also ``python -m bitflip_lib``).

Sub-commands::

    bitflip train --n 20 --arch har --her future      # one run; one JSON line on stdout
    bitflip sweep --n 5 10 20 --arch har uvfa --her none future --seeds 0 1 2 --out results/default
    bitflip sweep ... --ray [ADDRESS]                 # the same cells as Ray tasks (local Ray, or a cluster)
    bitflip table --results results/default           # the stored sweep beside the write-up's Table 1
    bitflip bench [--quick] [--json] [--only memory]  # throughput, time-to-solve and memory figures
    bitflip grade [...]                               # grade the exercises (see bitflip_lib.grading)

Progress goes to stderr, results to stdout. Bad arguments exit with status 2 and a one-line
reason on stderr, before any training starts: numbers out of range, options that contradict
each other or do not apply to the chosen network or HER strategy, and output paths that
cannot be written.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bitflip_lib.config import PRESETS
from bitflip_lib.her import HER_STRATEGIES
from bitflip_lib.lab.bench import SECTIONS as BENCH_SECTIONS
from bitflip_lib.lab.bench import run_bench
from bitflip_lib.lab.sweep import unused_setting
from bitflip_lib.networks import ARCHITECTURES

_LOCAL_RAY = "local"  # ``--ray`` without an address


class UsageError(Exception):
    """A bad argument: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump, status 2
        raise UsageError(f"{self.prog}: {message}")


# Argument types: a value out of range is reported with its option's name, before any work.
def _integer(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1)


def _nonnegative_int(text: str) -> int:
    return _integer(text, 0)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _fraction(text: str) -> float:
    """A number in (0, 1] (a discount, a Polyak fraction)."""
    value = _finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _unit_interval(text: str) -> float:
    """A number in [0, 1) (advantage learning's alpha)."""
    value = _finite(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _add_config_options(p: argparse.ArgumentParser, grid: bool) -> None:
    """Options shared by ``train`` and ``sweep`` (TrainConfig fields)."""
    many = {"nargs": "+"} if grid else {}
    p.add_argument("--n", type=_positive_int, required=True, **many, help="number of bits")
    p.add_argument("--arch", choices=ARCHITECTURES, default=None if grid else "har", **many,
                   help="Q-network architecture")
    p.add_argument("--her", choices=(*HER_STRATEGIES, "preset"), default=None if grid else "preset", **many,
                   help="HER strategy; 'preset' = the preset's own (future for default, writeup30 for writeup)")
    p.add_argument("--preset", choices=tuple(PRESETS), default="default", help="named settings to start from")
    p.add_argument("--k", type=_positive_int, help="relabelled goals per transition (future, episode)")
    p.add_argument("--max-iterations", type=_positive_int, help="iteration budget (default 3000)")
    p.add_argument("--max-seconds", type=_positive_float, help="wall-clock budget per run")
    p.add_argument("--gamma", type=_fraction, help="discount in (0, 1] (default: preset's, or max(0.98, 1 - 1/n))")
    p.add_argument("--polyak", type=_fraction, help="Polyak fraction tau of the target update, in (0, 1]")
    p.add_argument("--no-target", action="store_true", help="no target network (bootstrap from the online one)")
    p.add_argument("--no-clip", action="store_true", help="do not clip TD targets to [0, 1]")
    p.add_argument("--double-dqn", action="store_true", help="double DQN targets")
    p.add_argument("--hindsight-bound", action="store_true",
                   help="raise each TD target to at least what the episode's own path to the goal achieved")
    p.add_argument("--action-gap", type=_unit_interval, metavar="ALPHA",
                   help="advantage learning: widen the gap between the best flip and the rest, alpha in [0, 1)")
    p.add_argument("--lr", type=_positive_float, help="Adam learning rate")
    p.add_argument("--lr-end", type=_positive_float, help="decay the learning rate to this along a cosine over the budget")
    p.add_argument("--gradient-steps", type=_nonnegative_int, help="gradient steps per iteration")
    p.add_argument("--batch-size", type=_positive_int, help="replay batch size")
    p.add_argument("--buffer-capacity", type=_positive_int, help="replay buffer size in transitions")
    p.add_argument("--hidden", type=_positive_int, nargs="+", help="hidden widths (mlp, har, deepsets; the uvfa has none)")
    p.add_argument("--eval-agents", type=_positive_int, help="agents in each greedy evaluation (default 1024)")
    p.add_argument("--no-early-stop", action="store_true", help="keep training after the task is solved")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1...")
    p.add_argument("--threads", type=_positive_int, help="CPU threads for torch (e.g. 1 on a shared machine)")


def _overrides(args: argparse.Namespace) -> dict:
    """TrainConfig overrides given on the command line (only those set), checked for contradictions."""
    command = f"bitflip {args.command}"
    if args.no_target and args.polyak is not None:
        raise UsageError(f"{command}: --polyak sets how the target network follows the online one, and --no-target "
                         "removes the target network: give one of them, not both")
    if args.no_target and args.double_dqn:
        raise UsageError(f"{command}: --double-dqn needs a target network to value the online network's choice "
                         "(with --no-target it is plain DQN): give one of them, not both")
    mapping = {"k": "k", "max_iterations": "max_iterations", "max_seconds": "max_seconds", "gamma": "gamma",
               "polyak": "polyak", "lr": "lr", "lr_end": "lr_end", "gradient_steps": "gradient_steps", "batch_size": "batch_size",
               "buffer_capacity": "buffer_capacity", "eval_agents": "num_eval_agents", "action_gap": "action_gap"}
    out = {field: getattr(args, arg) for arg, field in mapping.items() if getattr(args, arg) is not None}
    if args.hidden:
        out["hidden"] = tuple(args.hidden)
    if args.no_target:
        out["polyak"] = None
    if args.no_clip:
        out["clip_targets"] = False
    if args.double_dqn:
        out["double_dqn"] = True
    if args.hindsight_bound:
        out["hindsight_bound"] = True
    if args.no_early_stop:
        out["early_stop"] = False
    out["device"] = args.device
    return out


def _set_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def _check_applies(command: str, overrides: dict, archs: Sequence[str], hers: Sequence[str]) -> None:
    """An option with no effect on any cell (``--hidden`` with ``--arch uvfa``...) is an error."""
    for key in overrides:
        reasons = {unused_setting(key, arch, her) for arch in archs for her in hers}
        if None not in reasons:
            target = (f"--arch {' '.join(archs)}" if key == "hidden" else f"--her {' '.join(hers)}")
            raise UsageError(f"{command}: --{key.replace('_', '-')} has no effect with {target}: "
                             f"{sorted(reasons)[0]}; leave it out")


def _build(build, *args, **kwargs):
    """``make_config``, ``grid``, ``load_runs``: a ValueError (a bad value, named by the library) is a
    usage error, ``bitflip: error: ...`` on one line with status 2, not a traceback."""
    try:
        return build(*args, **kwargs)
    except ValueError as err:
        raise UsageError(f"bitflip: error: {' '.join(str(err).split())}") from None


def _writable_folder(command: str, flag: str, given: str, folder: Path, hint: str) -> None:
    """Make sure results can be written in ``folder`` (created if missing) before any training."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{command}: {flag} {given}: {existing} is not a folder; {hint}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".bitflip-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UsageError(f"{command}: {flag} {given}: cannot write in {folder} ({err.strerror or err}); {hint}") from None


def train_config(args: argparse.Namespace):
    """The validated :class:`~bitflip_lib.config.TrainConfig` of a parsed ``bitflip train`` command."""
    from bitflip_lib.config import make_config

    command = "bitflip train"
    overrides = _overrides(args)
    if args.her != "preset":
        overrides["her"] = args.her
    config = _build(make_config, args.preset, n=args.n, arch=args.arch, seed=args.seed, **overrides)
    _check_applies(command, {key: value for key, value in overrides.items() if key != "her"}, [config.arch], [config.her])
    if args.evaluate_at and config.arch not in ("har", "deepsets") and set(args.evaluate_at) != {config.n}:
        raise UsageError(f"{command}: --evaluate-at with another n needs --arch har or deepsets "
                         f"({config.arch} has a fixed input size)")
    return config


def cmd_train(args: argparse.Namespace) -> int:
    from bitflip_lib.trainer import train

    config = train_config(args)
    if args.save:
        save = Path(args.save)
        if save.is_dir():
            raise UsageError(f"bitflip train: --save {args.save} is a folder; give a file name, e.g. {save / 'run.json'}")
        _writable_folder("bitflip train", "--save", args.save, save.parent, "choose a file in a folder you can write to")
    _set_threads(args)
    result = train(config, progress=not args.quiet)
    summary = result.summary()
    record_extra = {}
    if args.evaluate_at:
        # The trained network, unchanged, on other numbers of bits (HAR accepts any n).
        from bitflip_lib.trainer import evaluate

        transfer = {}
        for n in args.evaluate_at:
            device = next(result.network.parameters()).device
            transfer[str(n)] = evaluate(result.network, n, config.num_eval_agents, device=device, seed=config.seed + 7)
        summary["evaluated_at"] = transfer
        record_extra["evaluated_at"] = transfer
    if args.save:
        from bitflip_lib.lab.runs import StoredRun, write_run

        save = Path(args.save)
        write_run(StoredRun.from_result(result, **record_extra), save.parent, filename=save.name)
    print(json.dumps(summary), flush=True)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from bitflip_lib.config import make_config
    from bitflip_lib.lab.runs import StoredRun, load_runs
    from bitflip_lib.lab.sweep import cell_name, grid, run_sweep, run_sweep_ray
    from bitflip_lib.lab.table1 import render_table, table_cells

    command = "bitflip sweep"
    if args.ray is None and args.ray_gpus:
        raise UsageError(f"{command}: --ray-gpus sets the GPUs of each Ray task: add --ray, or leave it out")
    if args.ray is not None and args.threads:
        raise UsageError(f"{command}: --threads has no effect with --ray (each cell is a Ray task with one CPU "
                         "and one thread): leave it out")
    if args.ray is not None and not args.dry_run:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError(f"{command}: --ray needs Ray, an optional dependency: pip install ray") from None
    overrides = _overrides(args)
    archs = args.arch or ("uvfa", "har")
    hers = args.her or ("none", "preset")
    preset_her = _build(make_config, args.preset).her
    _check_applies(command, overrides, archs, [preset_her if her == "preset" else her for her in hers])
    configs = _build(grid, args.n, archs=archs, hers=hers, seeds=args.seeds, preset=args.preset, **overrides)
    if args.dry_run:
        for config in configs:
            print(cell_name(config))
        return 0
    _writable_folder(command, "--out", args.out, Path(args.out), "give a new or existing folder you can write to")
    _set_threads(args)

    def report(run: StoredRun, ran: bool) -> None:
        status = "ran" if ran else "kept"
        print(json.dumps({"cell": run.name, "status": status, "solved_at": run.solved_at,
                          "iterations": run.iterations, "success_rate": run.success_rate,
                          "wall_seconds": run.wall_seconds}), flush=True)

    if args.ray is None:
        run_sweep(configs, args.out, progress=not args.quiet, on_cell=report)
    else:
        run_sweep_ray(configs, args.out, address=None if args.ray == _LOCAL_RAY else args.ray,
                      progress=not args.quiet, on_cell=report, gpus_per_cell=args.ray_gpus or 0.0)
    print(render_table(table_cells(load_runs(args.out, preset=args.preset)), fmt="text"), file=sys.stderr)
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from bitflip_lib.lab.runs import load_runs
    from bitflip_lib.lab.table1 import TABLE_NS, render_table, table_cells

    filters = {"overrides": {}} if not args.all_settings else {}
    runs = _build(load_runs, args.results, recursive=args.recursive, **filters)
    cells = {preset: table_cells(r for r in runs if r.preset == preset) for preset in sorted({r.preset for r in runs})}
    if args.json:
        print(json.dumps([cell.to_dict() for preset in cells for cell in cells[preset].values()]))
        return 0
    if not runs:
        print(f"no stored results in {args.results}", file=sys.stderr)
        return 1
    for preset, preset_cells in cells.items():
        print(f"preset {preset}:")
        print(render_table(preset_cells, ns=args.ns or TABLE_NS, fmt=args.format))
        print()
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    _set_threads(args)
    if args.only and args.skip:
        raise UsageError("bitflip bench: give --only or --skip, not both")
    if args.peers:
        if args.only or args.skip or args.quick:
            raise UsageError("bitflip bench: --peers runs the peer comparison alone: leave out --only, --skip and --quick")
        try:
            from bitflip_lib.lab.peers import run_peer_bench
            run_peer_bench(ns=args.peer_n, seed=0, max_seconds=args.peer_budget, as_json=args.json)
        except ImportError as err:
            raise UsageError(f"bitflip bench --peers: {err}") from None
        return 0
    skip = [s for s in BENCH_SECTIONS if s not in args.only] if args.only else (args.skip or ())
    return run_bench(quick=args.quick, device=args.device, seeds=args.seeds, as_json=args.json,
                     skip=skip, uvfa_budget_seconds=args.uvfa_budget)


def cmd_grade(argv: Sequence[str]) -> int:
    try:
        from bitflip_lib.grading import cli_main
    except ImportError as err:
        raise UsageError(f"bitflip grade: the grader is not available in this installation ({err})") from err
    return int(cli_main(list(argv)) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bitflip", description="Goal-conditioned DQN on bit flipping: train, sweep, tabulate, benchmark, grade.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train one configuration; prints one JSON line")
    _add_config_options(p, grid=False)
    p.add_argument("--seed", type=_nonnegative_int, default=0)
    p.add_argument("--evaluate-at", type=_positive_int, nargs="+", metavar="N",
                   help="after training, evaluate the network unchanged at these numbers of bits (HAR)")
    p.add_argument("--save", help="also store the compact result record (JSON) at this path")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sweep", help="run a grid of configurations, saving each cell (resumable)")
    _add_config_options(p, grid=True)
    p.add_argument("--seeds", type=_nonnegative_int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", required=True, help="results directory (finished cells there are skipped)")
    p.add_argument("--dry-run", action="store_true", help="list the cells and exit")
    p.add_argument("--ray", nargs="?", const=_LOCAL_RAY, metavar="ADDRESS",
                   help="run the cells as Ray tasks: on a local Ray, or on the cluster at ADDRESS "
                        "(what 'ray start --head' prints; 'auto' finds a running one). Needs: pip install ray")
    p.add_argument("--ray-gpus", type=_positive_float, metavar="FRACTION",
                   help="GPUs per cell for --ray (e.g. 0.25 puts four cells on one GPU); default none")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("table", help="print stored sweep results beside the write-up's Table 1")
    p.add_argument("--results", required=True, help="results directory")
    p.add_argument("--format", choices=("text", "markdown"), default="text")
    p.add_argument("--ns", type=_positive_int, nargs="+", help="columns (default 5 10 15 20 30 40 50)")
    p.add_argument("--recursive", action="store_true", help="also read sub-directories")
    p.add_argument("--all-settings", action="store_true", help="include cells run with non-preset overrides")
    p.add_argument("--json", action="store_true", help="print the aggregated cells as JSON")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("bench", help="environment throughput and time-to-solve figures")
    p.add_argument("--quick", action="store_true", help="small sizes (seconds); for smoke tests")
    p.add_argument("--device", default="auto")
    p.add_argument("--seeds", type=_positive_int, default=5, help="seeds for the n = 50 time-to-solve median")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p.add_argument("--skip", nargs="+", choices=BENCH_SECTIONS, help="sections to leave out")
    p.add_argument("--only", nargs="+", choices=BENCH_SECTIONS, help="run only these sections")
    p.add_argument("--uvfa-budget", type=_positive_float, default=300.0,
                   help="wall-clock seconds for the vanilla UVFA n = 15 run")
    p.add_argument("--threads", type=_positive_int, help="CPU threads for torch")
    p.add_argument("--peers", action="store_true",
                   help="time stable-baselines3's DQN + HER beside the course's learner (one thread each; "
                        "needs the 'peers' extra)")
    p.add_argument("--peer-n", type=_positive_int, nargs="+", default=[15, 20], help="n for --peers (default 15 20)")
    p.add_argument("--peer-budget", type=_positive_float, default=600.0,
                   help="wall-clock seconds each --peers run may take (default 600)")
    p.set_defaults(func=cmd_bench)

    from bitflip_lib.generation.cli import add_generate_parser  # chapter 8: `bitflip generate`
    add_generate_parser(sub)
    sub.add_parser("grade", help="grade the exercises (arguments go to the grader; try 'bitflip grade --help')",
                   add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bitflip`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "grade":
            return cmd_grade(argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UsageError as err:
        print(str(err).splitlines()[0], file=sys.stderr)
        return 2
    except ValueError as err:
        message = " ".join(str(err).split())
        print(f"bitflip: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bitflip: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``bitflip sweep --dry-run | head``): stop quietly, as Unix tools do.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
