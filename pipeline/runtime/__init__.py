"""How a stage runs, never what it computes: progress bars, Ctrl-C handling, the command-line wrapper,
MLflow logging and the benchmark's phase timer. dvc.yaml does not list these as deps (a test checks
that this is all they are) and checkpoint fingerprints ignore them."""
