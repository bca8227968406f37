"""Running campaign flows: locally (resumable) and, later, through FireWorks / jobflow-remote."""
