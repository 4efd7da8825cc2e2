"""Meta-training KNOWN (docs/method.md): collect forgetting trajectories, turn them into windows, train one network per
parameter group. ``jobs`` lists the grid, ``collection`` runs it (locally or one job at a time on a cluster),
``metadataset`` loads and splits it by trajectory, ``training`` fits the networks and writes the checkpoint and card.
"""
