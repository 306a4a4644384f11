"""The rule language: YAML 1.2 files, pydantic models of what a rule may say, and whole-rule checks."""
