"""Reusable widgets: plotext plots in a Static, the architectures table."""
