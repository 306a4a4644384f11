"""Lambda entry points: parse the input, call the domain, map the result to the response."""
