"""The algorithms: VPG, PPO, TRPO and NPG (TRPO without the line search)."""
