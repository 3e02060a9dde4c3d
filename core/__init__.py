"""klmtui's domain layer: architectures, networks, counting, sampling, data, training, store, Pareto.

Kept import-free on purpose: parts of this package (genotypes, ops, network) are pushed to
Jetson devices running Python 3.6, and `import core` must stay instant for the CLI and TUI.
"""
