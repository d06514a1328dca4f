"""Lab tooling: stored runs, sweeps, the write-up's Table 1, benchmarks, peers, Gymnasium."""
