"""Running campaign flows: locally (:mod:`.local`) or on FireWorks (:mod:`.fireworks`)."""
