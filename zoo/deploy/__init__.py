"""Shipping a trained model: export with a serving signature, verified against the Keras model
(export), and evaluation of the exported artifact on a dataset (evaluation). Needs no trainer.
"""
