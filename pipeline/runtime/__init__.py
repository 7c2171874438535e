"""How a stage runs, never what it computes: progress bars, Ctrl-C handling, the command-line wrapper,
MLflow logging, the benchmark's phase timer and the launcher that runs the pretrain stage as SLURM jobs.
dvc.yaml does not list these as deps (a test checks that this is all they are) and checkpoint fingerprints
ignore them."""
