"""What every stage shares and whose change can change an output: errors, atomic writes, typed params,
machine facts, and the import graph that names a stage's code."""
