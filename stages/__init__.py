"""One thin entry per DVC stage: `python -m stages.<stage> <args>` reads params and artefact paths,
calls pipeline.*, and writes exactly the outputs dvc.yaml declares."""
