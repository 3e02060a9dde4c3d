"""The benchmark agent that runs ON the device (Python 3.6 / torch 1.10 compatible)."""
