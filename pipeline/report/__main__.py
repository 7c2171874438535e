"""`python -m pipeline.report --sync-readme | --check`: see pipeline/report/readme.py."""
from pipeline.report.readme import main
from pipeline.runtime.cli import run_stage

run_stage(main)
