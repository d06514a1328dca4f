# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 8: the replay buffer
#
# **Goes with:** chapter 3 (DQN with experience replay). **Time:** about 30 minutes.
# **Run time:** about 1 minute on a laptop CPU.
#
# **Recap.** DQN does not learn from each transition once, in the order it was played: it stores
# transitions in a *replay buffer* and learns from batches drawn uniformly from it (Mnih et al. 2015).
# Uniform draws break the correlation between consecutive steps, and every transition is reused many
# times. The write-up (and this course) keep the last $2^{15}$ transitions:
#
# * **circular insert**: the buffer has a fixed `capacity`; a write pointer `position` says where the
#   next transition goes, and moves on modulo `capacity`, so once the buffer is full the newest
#   transition overwrites the oldest one;
# * **uniform sampling of the filled part**: a batch is `batch_size` indices drawn uniformly, with
#   replacement, from the `size` slots that hold data (`size` grows to `capacity` and stays there);
# * **on the device**: the storage, the indices and the random generator all live on the training
#   device (the GPU when there is one), so sampling never copies the buffer to the CPU, and one seeded
#   generator makes a run reproducible.
#
# **Your task.** Write `ReplayBuffer(n, capacity, device)` with `add(transitions)` and
# `sample(batch_size, generator)`. The library's trainer will then train with your buffer.

# %%
# The course library. Outside the course folder (Colab, a downloaded notebook), install it with
#   %pip install bitflip-course==0.1.0
try:
    import bitflip_lib
except ModuleNotFoundError:
    raise ModuleNotFoundError(
        "bitflip_lib is missing: run `%pip install bitflip-course==0.1.0`, then rerun this cell"
    ) from None

# %% tags=["graded"]
import torch

from bitflip_lib import quick_mode
from bitflip_lib.replay import Transitions

# %%
QUICK = quick_mode()
print(f"Running in {'quick' if QUICK else 'full'} mode")


# %% tags=["graded"]
class ReplayBuffer:
    """A ring buffer of at most ``capacity`` transitions of n bits on ``device``, sampled uniformly."""

    def __init__(self, n: int, capacity: int = 2**15, device: str | torch.device = "cpu") -> None:
        ### BEGIN SOLUTION HINT: one preallocated tensor per field of Transitions, capacity rows each, on the device; plus a write position and a size
        # RECIPE: 1. `self.device = torch.device(device)`; keep `n` and `capacity`.
        # RECIPE: 2. `torch.zeros(capacity, n, device=self.device)` for `state`, `goal`, `next_state`; `torch.zeros(capacity, dtype=torch.long, device=...)` for `action`; `torch.zeros(capacity, device=...)` for `reward` and `done`.
        # RECIPE: 3. `self.position = 0` (the next slot to write) and `self.size = 0` (slots holding data).
        self.n, self.capacity, self.device = n, capacity, torch.device(device)
        self.state = torch.zeros(capacity, n, device=self.device)
        self.goal = torch.zeros(capacity, n, device=self.device)
        self.next_state = torch.zeros(capacity, n, device=self.device)
        self.action = torch.zeros(capacity, dtype=torch.long, device=self.device)
        self.reward = torch.zeros(capacity, device=self.device)
        self.done = torch.zeros(capacity, device=self.device)
        self.position = 0
        self.size = 0
        ### END SOLUTION

    def __len__(self) -> int:
        return self.size

    def add(self, batch: Transitions) -> None:
        """Store every transition of ``batch``, overwriting the oldest ones once the buffer is full."""
        ### BEGIN SOLUTION HINT: the k-th new transition goes to slot (position + k) modulo capacity; then move position and size on
        # RECIPE: 1. `count = len(batch)`; if it exceeds `capacity`, keep only the last `capacity` transitions.
        # RECIPE: 2. `slots = (self.position + torch.arange(count, device=self.device)) % self.capacity`.
        # RECIPE: 3. For each field: `self.state[slots] = batch.state.to(self.device, torch.float32)` (actions as long).
        # RECIPE: 4. `self.position = (self.position + count) % self.capacity`; `self.size = min(self.size + count, self.capacity)`.
        count = len(batch)
        fields = ("state", "goal", "action", "reward", "next_state", "done")
        values = {name: getattr(batch, name)[-self.capacity:] for name in fields}  # only the newest survive
        count = min(count, self.capacity)
        slots = (self.position + torch.arange(count, device=self.device)) % self.capacity
        for name in fields:
            storage = getattr(self, name)
            storage[slots] = values[name].to(self.device, storage.dtype)
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)
        ### END SOLUTION

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Transitions:
        """``batch_size`` transitions drawn uniformly, with replacement, from the filled slots."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer: add transitions first")
        ### BEGIN SOLUTION HINT: draw batch_size indices uniformly among the size filled slots, with the generator you were given, on the buffer's device
        # RECIPE: 1. `idx = torch.randint(0, self.size, (batch_size,), generator=generator, device=self.device)`.
        # RECIPE: 2. Return `Transitions(self.state[idx], self.goal[idx], self.action[idx], self.reward[idx], self.next_state[idx], self.done[idx])`.
        idx = torch.randint(0, self.size, (batch_size,), generator=generator, device=self.device)
        return Transitions(self.state[idx], self.goal[idx], self.action[idx], self.reward[idx],
                           self.next_state[idx], self.done[idx])
        ### END SOLUTION


# %% [markdown]
# ## Check your buffer
#
# The checks fill small buffers with numbered transitions and look at what comes back: only what was
# stored, the newest `capacity` once it wrapped around, every filled slot equally often, the same batch
# for the same generator seed. The last check trains HER + HAR with your buffer inside the library's
# trainer.

# %%
from bitflip_lib.grading import check

check("ex08_replay_buffer", ReplayBuffer)

# %% [markdown]
# ## Experiment: how old is a sampled transition?
#
# Fill a buffer of capacity 1000 with 10 transitions per "iteration" for 300 iterations, then sample.
# Before the buffer is full, samples come from everything played so far; afterwards only from the last
# 100 iterations, each equally often: the buffer is a sliding window over the agent's experience.

# %%
from bitflip_lib.grading import numbered_transitions, numbers_of

capacity, per_iteration, iterations = 1000, 10, 300
buffer = ReplayBuffer(n=12, capacity=capacity)
for it in range(iterations):
    buffer.add(numbered_transitions(range(it * per_iteration, (it + 1) * per_iteration), n=12))
batch = buffer.sample(20_000, generator=torch.Generator().manual_seed(0))
ids = numbers_of(batch, n=12).to(torch.long)  # each stored transition carries its number in its bits
ages = (iterations - 1) - ids // per_iteration  # in iterations
print(f"buffer holds {len(buffer)} transitions; sampled ages range over {int(ages.min())} ... {int(ages.max())} iterations")

# %% [markdown]
# Every sampled transition comes from the last 100 iterations, and the ages are spread evenly over
# them (asserted below: each tenth of the window gets about a tenth of the batch).

# %%
assert len(buffer) == capacity and int(ages.min()) == 0 and int(ages.max()) == capacity // per_iteration - 1
shares = torch.bincount(ages // 10, minlength=10).float() / len(ages)
assert bool((shares - 0.1).abs().max() < 0.02), shares

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(ages.numpy(), bins=50)
ax.set_xlabel("age of the sampled transition (iterations)")
ax.set_ylabel("count in a batch of 20,000")
ax.set_title(f"Uniform replay from a buffer of {capacity} transitions")
plt.show()

# %% [markdown]
# **Summary.** A replay buffer is preallocated storage, a write position that wraps around, and indices
# drawn uniformly from the filled part with the run's own generator on the training device. Next:
# chapter 4 fills such a buffer with hindsight goals.
