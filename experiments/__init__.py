"""Experiments of the paper that run without training (``python -m experiments.<name>``)."""
