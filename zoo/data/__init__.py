"""Input data: where images come from (sources: TFDS or a folder), the tf.data pipelines (pipeline),
the preprocessing shared by training and every export (preprocess), and the datasets embedded in
the package (datasets/). Imports only the experiment config, zoo.models and zoo.common.
"""
