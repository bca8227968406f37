"""Stage makers (atomate2 style): one module per stage, each a dataclass with make()."""
