"""remapdsl: human-in-the-loop discovery of small neural network architectures."""

__version__ = "0.1.0"
