#!/usr/bin/env python3
"""CDK entry point (``cdk synth`` / ``cdk deploy`` run this): see infra/app.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "functions"))

from infra.app import main

main()
