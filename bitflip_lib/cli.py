"""The ``bitflip`` command line (also ``python -m bitflip_lib``).

Sub-commands::

    bitflip train --n 20 --arch har --her future      # one run; one JSON line on stdout
    bitflip sweep --n 5 10 20 --arch har uvfa --her none future --seeds 0 1 2 --out results/default
    bitflip sweep ... --ray [ADDRESS]                 # the same cells as Ray tasks (local Ray, or a cluster)
    bitflip table --results results/default           # the stored sweep beside the write-up's Table 1
    bitflip bench [--quick] [--json] [--only memory]  # throughput, time-to-solve and memory figures
    bitflip generate --method gflownet --length 8 --reward multimodal --steps 400   # chapters 8-9's generators
    bitflip grade [...]                               # grade the exercises (see bitflip_lib.grading)

Progress goes to stderr, results to stdout (standard JSON: no NaN or Infinity). Bad arguments exit
with status 2 and a one-line reason on stderr, before any training starts or any file is
written: numbers out of range or not finite, options that contradict each other or do not apply
to the chosen network or HER strategy, devices this machine cannot compute on, sizes past its
memory (the estimate, what is available and the option to lower), and output paths that cannot
be written. A run whose loss stops being a finite number exits with status 1 and one line naming
the step and the option most likely to blame.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bitflip_lib.config import PRESETS
from bitflip_lib.dqn import EPS_SCHEDULES, LOSSES
from bitflip_lib.env import evaluation_seed
from bitflip_lib.her import HER_STRATEGIES
from bitflip_lib.lab.bench import SECTIONS as BENCH_SECTIONS
from bitflip_lib.lab.bench import run_bench
from bitflip_lib.lab.runs import run_name
from bitflip_lib.lab.studies import StudyConfig, make_run_config
from bitflip_lib.lab.sweep import check_applies
from bitflip_lib.networks import ACTIVATIONS, ANY_N_ARCHITECTURES, ARCHITECTURES
from bitflip_lib.options import OptionSpec, add_options, given_options, refusal
from bitflip_lib.runtime import strict_json
from bitflip_lib.trainer import TrainingDiverged

_LOCAL_RAY = "local"  # ``--ray`` without an address


class UsageError(Exception):
    """A bad argument: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump, status 2
        raise UsageError(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    """An integer >= 1 (options of the commands themselves: seeds count, budgets...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _cpu_count() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _threads(text: str) -> int:
    """A number of torch threads: an integer from 1 to the CPUs of this machine (more only thrash)."""
    value = _positive_int(text)
    if value > _cpu_count():
        raise argparse.ArgumentTypeError(f"this machine has {_cpu_count()} CPUs: give at most {_cpu_count()}, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


# The training settings as options: every field of StudyConfig (TrainConfig's and the studies'),
# derived by bitflip_lib.options. Today's names are kept where they differ from the field's.
_FLAGS = {"num_eval_agents": "--eval-agents", "clip_targets": "--clip"}
_CHOICES = {"arch": ARCHITECTURES, "her": (*HER_STRATEGIES, "preset"), "loss": tuple(LOSSES),
            "eps_schedule": EPS_SCHEDULES, "activation": tuple(ACTIVATIONS), "preset": tuple(PRESETS)}


def _add_config_options(p: argparse.ArgumentParser, grid: bool) -> dict[str, OptionSpec]:
    """The settings' options, shared by ``train`` and ``sweep``; returns their specs."""
    p.add_argument("--n", type=_positive_int, required=True, nargs="+" if grid else None, help="number of bits")
    specs = add_options(p, StudyConfig, skip=("n", "seed", "preset"), flags=_FLAGS, choices=_CHOICES,
                        many=("arch", "her") if grid else ())
    p.add_argument("--preset", choices=tuple(PRESETS), default="default",
                   help="named settings to start from (every option not given keeps the preset's value)")
    p.add_argument("--no-target", action="store_true", help="no target network (the same as --polyak none)")
    p.add_argument("--threads", type=_threads, help="CPU threads for torch (e.g. 1 on a shared machine), at most the CPUs")
    return specs


def _settings(args: argparse.Namespace, specs: dict[str, OptionSpec]) -> dict:
    """The settings given on the command line (only those set)."""
    command = f"bitflip {args.command}"
    values = given_options(args, specs)
    if args.no_target:
        if "polyak" in values:
            raise UsageError(f"{command}: --polyak sets how the target network follows the online one, and --no-target "
                             "removes the target network: give one of them, not both")
        values["polyak"] = None
    return values


def _set_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def _build(command: str, specs: dict[str, OptionSpec], build, *args, extra: dict | None = None, **kwargs):
    """``make_run_config``, ``grid``, ``load_runs``: a ValueError (a bad value, named by the library) is a
    usage error on one line with status 2, in the options' words, not a traceback."""
    try:
        return build(*args, **kwargs)
    except ValueError as err:
        message = str(err).replace("polyak=None", "--no-target")
        raise UsageError(f"{command}: {refusal(message, specs, extra or {})}") from None


def _writable_folder(command: str, flag: str, given: str, folder: Path, hint: str) -> Path:
    """Make sure results can be written in ``folder`` (created if missing) before any training;
    ``given`` is what the user typed for ``flag``."""
    if not given.strip():
        raise UsageError(f"{command}: {flag} is empty; {hint}")
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
    return folder


def train_config(args: argparse.Namespace):
    """The validated configuration of a parsed ``bitflip train`` command."""
    command = "bitflip train"
    values = _settings(args, args.specs)
    config = _build(command, args.specs, make_run_config, args.preset, n=args.n, seed=args.seed, extra={"seed": "--seed"},
                    **values)
    given = {key: value for key, value in values.items() if key not in ("arch", "her")}
    _build(command, args.specs, check_applies, given, [config.arch], [config.her])
    if args.evaluate_at and config.arch not in ANY_N_ARCHITECTURES and set(args.evaluate_at) != {config.n}:
        raise UsageError(f"{command}: --evaluate-at with another n needs --arch {' or '.join(ANY_N_ARCHITECTURES)} "
                         f"({config.arch} has a fixed input size)")
    return config


_SIZE_FLAGS = {"n": "--n", "evaluate_at": "--evaluate-at"}  # settings a memory refusal may name besides the specs


def _check_memory(command: str, specs: dict[str, OptionSpec], estimate, device: str) -> None:
    """Refuse a run past this machine's memory (one line, status 2) before anything is created."""
    from bitflip_lib.runtime.budget import check_memory
    from bitflip_lib.runtime.device import default_device

    _build(command, specs, check_memory, estimate, default_device(device), extra=_SIZE_FLAGS)


def cmd_train(args: argparse.Namespace) -> int:
    from bitflip_lib.trainer import memory_estimate, train

    config = train_config(args)
    _check_memory("bitflip train", args.specs, memory_estimate(config, args.evaluate_at or ()), config.device)
    if args.save is not None:
        save = Path(args.save)
        if not args.save.strip() or not save.name:
            raise UsageError("bitflip train: --save is empty; give a file name, e.g. run.json")
        if save.is_dir():
            raise UsageError(f"bitflip train: --save {args.save} is a folder; give a file name, e.g. {save / 'run.json'}")
        _writable_folder("bitflip train", "--save", args.save, save.parent, "choose a file in a folder you can write to")
    _set_threads(args)
    result = train(config, progress=not args.quiet)
    summary = result.summary()
    record_extra = {}
    if args.evaluate_at:
        # The trained network, unchanged, on other numbers of bits (HAR and DeepSets accept any n).
        from bitflip_lib.diagnosis.analysis import transfer_success

        transfer = transfer_success(result.network, args.evaluate_at, config.num_eval_agents,
                                    seed=evaluation_seed(config.seed))
        summary["evaluated_at"] = record_extra["evaluated_at"] = {str(n): ev for n, ev in transfer.items()}
    if args.save is not None:
        from bitflip_lib.lab.runs import StoredRun, write_run

        save = Path(args.save)
        write_run(StoredRun.from_result(result, **record_extra), save.parent, filename=save.name)
    print(strict_json.dumps(summary), flush=True)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from bitflip_lib.lab.runs import StoredRun, load_runs
    from bitflip_lib.lab.sweep import grid, run_sweep, run_sweep_ray
    from bitflip_lib.lab.table1 import render_table, table_cells

    command = "bitflip sweep"
    if args.ray is not None and not args.ray.strip():
        raise UsageError(f"{command}: --ray's address is empty; give a cluster's address, or --ray alone for a local Ray")
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
    values = _settings(args, args.specs)
    archs = values.pop("arch", None) or ("uvfa", "har")
    hers = values.pop("her", None) or ("none", "preset")
    configs = _build(command, args.specs, grid, args.n, archs=archs, hers=hers, seeds=args.seeds, preset=args.preset,
                     extra={"seed": "--seeds"}, **values)
    if args.dry_run:
        for config in configs:
            print(run_name(config))
        return 0
    if args.ray is None:  # Ray cells run on the cluster's machines, which check their own memory
        from bitflip_lib.lab.sweep import check_cells_fit

        _build(command, args.specs, check_cells_fit, configs, Path(args.out), extra=_SIZE_FLAGS)
    out = _writable_folder(command, "--out", args.out, Path(args.out), "give a new or existing folder you can write to")
    _set_threads(args)

    def report(run: StoredRun, ran: bool) -> None:
        status = "ran" if ran else "kept"
        print(strict_json.dumps({"cell": run.name, "status": status, "solved_at": run.solved_at,
                          "confirmed_at": run.confirmed_at, "iterations": run.iterations,
                          "success_rate": run.success_rate, "wall_seconds": run.wall_seconds}), flush=True)

    if args.ray is None:
        run_sweep(configs, out, progress=not args.quiet, on_cell=report)
    else:
        run_sweep_ray(configs, out, address=None if args.ray == _LOCAL_RAY else args.ray,
                      progress=not args.quiet, on_cell=report, gpus_per_cell=args.ray_gpus or 0.0)
    print(render_table(table_cells(load_runs(out, preset=args.preset)), fmt="text"), file=sys.stderr)
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from bitflip_lib.lab.runs import load_runs
    from bitflip_lib.lab.table1 import TABLE_NS, render_table, table_cells

    filters = {"overrides": {}} if not args.all_settings else {}
    runs = _build("bitflip table", {}, load_runs, args.results, recursive=args.recursive, extra={"folder": "--results"},
                  **filters)
    cells = {preset: table_cells(r for r in runs if r.preset == preset) for preset in sorted({r.preset for r in runs})}
    if args.json:
        print(strict_json.dumps([cell.to_dict() for preset in cells for cell in cells[preset].values()]))
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


def cmd_generate(args: argparse.Namespace) -> int:
    """Train one generator of chapters 8-9: progress on stderr, one JSON summary line on stdout."""
    from bitflip_lib.generation.training import GenerateConfig, memory_estimate, train_generator

    config = _build("bitflip generate", args.specs, GenerateConfig, **given_options(args, args.specs))
    _check_memory("bitflip generate", args.specs, memory_estimate(config), config.device)
    _set_threads(args)

    def progress(record: dict, _policy) -> None:
        if not args.quiet:
            shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items() if k != "mode_mass"}
            print(f"[generate] {strict_json.dumps(shown)}", file=sys.stderr, flush=True)

    result = train_generator(config, callback=progress)
    print(strict_json.dumps(result.summary()), flush=True)
    return 0


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
    p.set_defaults(specs=_add_config_options(p, grid=False))
    p.add_argument("--seed", type=_seed, default=0, help="the one seed of the run (an integer >= 0)")
    p.add_argument("--evaluate-at", type=_positive_int, nargs="+", metavar="N",
                   help="after training, evaluate the network unchanged at these numbers of bits (HAR)")
    p.add_argument("--save", help="also store the compact result record (JSON) at this path")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sweep", help="run a grid of configurations, saving each cell (resumable)")
    p.set_defaults(specs=_add_config_options(p, grid=True))
    p.add_argument("--seeds", type=_seed, nargs="+", default=[0, 1, 2], help="one run per seed (integers >= 0)")
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
    p.add_argument("--threads", type=_threads, help="CPU threads for torch, at most the CPUs")
    p.add_argument("--peers", action="store_true",
                   help="time stable-baselines3's DQN + HER beside the course's learner (one thread each; "
                        "needs the 'peers' extra)")
    p.add_argument("--peer-n", type=_positive_int, nargs="+", default=[15, 20], help="n for --peers (default 15 20)")
    p.add_argument("--peer-budget", type=_positive_float, default=600.0,
                   help="wall-clock seconds each --peers run may take (default 600)")
    p.set_defaults(func=cmd_bench)

    # Chapter 8: one option per GenerateConfig field, today's names (--log-z-lr, --num-pairs...).
    from bitflip_lib.generation.sequences import BASELINES, REWARD_KINDS
    from bitflip_lib.generation.training import METHODS, GenerateConfig

    p = sub.add_parser("generate", help="train a generator of bit strings (chapters 8-9); prints one JSON line")
    p.set_defaults(specs=add_options(p, GenerateConfig, choices={"method": METHODS, "reward": REWARD_KINDS,
                                                                 "baseline": BASELINES}, defaults=GenerateConfig()))
    p.add_argument("--threads", type=_threads, help="CPU threads for torch, at most the CPUs")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_generate)
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
        try:
            return args.func(args)
        except TrainingDiverged as err:  # valid settings, but the run went non-finite: say which setting, status 1
            print(f"bitflip {args.command}: {refusal(str(err), getattr(args, 'specs', {}))}", file=sys.stderr)
            return 1
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
