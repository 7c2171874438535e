"""What every stage shares and whose change can change an output: errors, atomic writes, the machine
(device, autocast), the repository root, and the import graph that names a stage's code. It knows no
params block and no method."""
