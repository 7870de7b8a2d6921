"""Command-line tools: argv parsing, printing and progress live here only."""
