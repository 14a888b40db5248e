"""Studies built on training: ablation sweeps (ablation), architectures side by side (compare)
and pictures of what a trained network does (visualize). Imported by the CLI alone.
"""
