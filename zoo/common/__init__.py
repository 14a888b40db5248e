"""What every layer of the zoo may use, and which imports nothing else of the zoo.

One-line user errors and exit statuses (errors), atomic file writes (files), strict YAML
(yamlfiles), config values checked against type hints (schema) and a quiet TensorFlow import
(quiet).
"""
