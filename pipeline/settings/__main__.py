from pipeline.runtime.cli import run_stage
from pipeline.settings import main

run_stage(main)
