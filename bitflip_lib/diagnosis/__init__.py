"""Diagnosis: reward counts, ablations, HAR probes' uses, and why greedy agents fail."""
