"""Helpers the test folders share: throw-away databases, processes and ports, executor tasks."""
