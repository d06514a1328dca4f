"""Generation under sparse rewards: chapters 8 (policy gradients) and 9 (GFlowNets, hindsight)."""
