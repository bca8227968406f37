"""Machine-learned force fields: MACE training in a worker process and its evaluation."""
