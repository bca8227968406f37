"""The stand-in's name, shared by the command line and the writers (no heavy imports here)."""

PROGRAM = "ctaflow-vasp-standin"
