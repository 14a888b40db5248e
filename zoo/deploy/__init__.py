"""Shipping a trained model: the serving graph every format exports (graph), one module per format
(saved_model, keras_file, litert, onnx_file) and their registry (formats), what an export starts
from and every artifact carries (artifact), verification against the Keras model (verify), the
export of a run (export), evaluation of any artifact (evaluation), and the optional runtime
packages (runtime). Needs no trainer.
"""
