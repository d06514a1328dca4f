"""The exercises the graders know, by name (``ex05_her_future``), short name (``ex05``) or number."""
from __future__ import annotations

from pathlib import Path

from bitflip_lib.grading import (
    ex01_env_step,
    ex02_tabular,
    ex03_td_target,
    ex04_polyak,
    ex05_her_future,
    ex06_har,
    ex07_learner_step,
    ex08_replay_buffer,
    ex09_reinforce,
    ex10_trajectory_balance,
)
from bitflip_lib.grading.model import Exercise

EXERCISES: dict[str, Exercise] = {
    module.EXERCISE.name: module.EXERCISE
    for module in (ex01_env_step, ex02_tabular, ex03_td_target, ex04_polyak, ex05_her_future, ex06_har, ex07_learner_step, ex08_replay_buffer,
                   ex09_reinforce, ex10_trajectory_balance)
}


def resolve(exercise: str) -> Exercise:
    """Find an exercise by full name (``ex05_her_future``), short name (``ex05``) or number (``5``)."""
    key = str(exercise).strip().lower().removesuffix(".py").removesuffix(".ipynb")
    key = Path(key).name
    if key.isdigit():
        key = f"ex{int(key):02d}"
    for name, ex in EXERCISES.items():
        if key in (name, ex.short):
            return ex
    raise ValueError(f"unknown exercise {exercise!r}: choose one of {', '.join(EXERCISES)}")
