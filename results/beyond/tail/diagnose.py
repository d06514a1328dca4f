"""Why the last agents fail: rerun one stored cell and take its trained network apart.

    python results/beyond/tail/diagnose.py results/beyond/mlp_n50/<cell>.json

Reruns the cell's exact configuration on the CPU (one thread), checks that its success curve
matches the stored one point for point, measures the effective rank (srank) of the MLP's hidden
layer every 50 iterations on a fixed probe batch, and at the end plays 1024 fresh agents for the
whole episode with the online and the target network, by argmax, with tie-breaks and with small
epsilons, and measures how often the argmax picks a right flip at each distance and, at distance
1, for each bit (bitflip_lib.diagnosis.failures). Writes results/beyond/tail/<cell>.json, and the two
trained networks to results/beyond/tail/<cell>.networks.pt for further probes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from bitflip_lib.diagnosis.failures import (
    compare_rules,
    effective_rank,
    hidden_features,
    play_greedy,
    probe_batch,
    right_move_rate,
    right_move_rate_by_bit,
    wrong_move_margins,
)
from bitflip_lib.lab.runs import load_run, source_commit, write_json_atomic
from bitflip_lib.trainer import build_network, evaluate, train

HERE = Path(__file__).resolve().parent


def dead_units(features: torch.Tensor) -> int:
    """Hidden units that are zero on every probe input."""
    return int((features.max(0).values <= 0).sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cell", help="a stored run (JSON) of an MLP")
    parser.add_argument("--out", default=str(HERE), help="folder for the report (default: this script's)")
    parser.add_argument("--rank-every", type=int, default=50)
    args = parser.parse_args()
    stored = load_run(args.cell)
    if stored.arch != "mlp":
        sys.exit(f"diagnose.py: {args.cell} is a {stored.arch} run; this analysis reads an MLP's hidden layer")
    torch.set_num_threads(1)
    config = stored.train_config(device="cpu")
    network = build_network(config, torch.device("cpu"))
    probe_state, probe_goal = probe_batch(config.n)
    width = network.body[-1].in_features

    def rank_now(iteration: int) -> dict:
        features = hidden_features(network, probe_state, probe_goal)
        return {"iteration": iteration, "srank": effective_rank(features), "dead_units": dead_units(features)}

    ranks = [rank_now(0)]

    def record_rank(record: dict) -> None:
        if record["iteration"] % args.rank_every == 0:
            ranks.append(rank_now(record["iteration"]))

    start = time.perf_counter()
    result = train(config, callbacks=[record_rank], network=network, progress=True)
    ranks.append(rank_now(result.iterations))
    rerun_curve = {h["iteration"]: round(float(h["success_rate"]), 5) for h in result.history if "success_rate" in h}
    stored_its, stored_success = stored.curve("success_rate")
    reproduced = all(rerun_curve.get(i) == s for i, s in zip(stored_its, stored_success))
    report: dict = {"cell": stored.name, "n": config.n, "gamma": config.effective_gamma, "width": width,
                    "reproduced": reproduced, "iterations": result.iterations, "solved_at": result.solved_at,
                    "training_seconds": round(time.perf_counter() - start, 1), "rank": ranks, "networks": {}}
    commit, dirty = source_commit()
    report["commit"], report["dirty"] = commit, dirty
    for label, net in (("online", result.network), ("target", result.target_network)):
        if net is None:
            continue
        played = play_greedy(net, config.n, 1024, seed=0)
        features = hidden_features(net, probe_state, probe_goal)
        report["networks"][label] = {
            "evaluate": evaluate(net, config.n, 1024, seed=7),  # the trainer's rule, on another 1024 agents
            "rules": compare_rules(net, config.n, 1024, seed=0),
            "margins": wrong_move_margins(net, played, config.effective_gamma),
            "srank": effective_rank(features), "dead_units": dead_units(features),
            "right_move_rate": right_move_rate(net, config.n, [d for d in (1, 2, 3, 5, 8, 12, 18, 25, 35, 50, 75, 100)
                                                                if d <= config.n]),
            "right_move_rate_by_bit_at_1": right_move_rate_by_bit(net, config.n, distance=1, count=64)}
    out = Path(args.out) / f"{stored.name}.json"
    write_json_atomic(out, report)
    torch.save({"config": config.to_dict(), "online": result.network.state_dict(),
                "target": None if result.target_network is None else result.target_network.state_dict()},
               Path(args.out) / f"{stored.name}.networks.pt")
    online = report["networks"]["online"]["rules"]["argmax"]
    print(f"reproduced: {reproduced}; success {online['success_rate']:.3f}; {online['failures']} failing, "
          f"{online['cycling']} of them cycling; srank {ranks[0]['srank']} -> {ranks[-1]['srank']} of {width}; "
          f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
