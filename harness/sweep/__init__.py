"""Sweeps: the protocols' grids of train.py runs on this machine (serial, local workers or GPUs) or on Slurm."""
