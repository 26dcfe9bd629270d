"""AI factory fleet operator: places GPU inference on modules by latency, energy, sovereignty."""

__version__ = "0.1.0"
