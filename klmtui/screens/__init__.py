"""The app's screens: architectures (home), details/live, Pareto, devices, and the dialogs."""
