"""The model library: what a network is, usable with no dataset and no training.

Model configs and their validation (config), the block library (blocks/) written once against
the block primitives (ops), which build Keras layers (keras_ops, layers) or count shapes,
parameters, MACs and receptive fields analytically (analysis); the builder that wires blocks into
a model, ImageNet weights from keras.applications (pretrained) and `.keras` loading (saving).
Imports only zoo.common.
"""
