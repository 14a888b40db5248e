"""The command lines: `python -m zoo COMMAND` (commands) and what `train.py CONFIG` runs
(runner: one experiment, or an ablation sweep). The top layer: it may import every other.
"""
