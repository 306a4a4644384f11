"""boto3 implementations of the evaluator's ports (and, later, of delivery's channels)."""
