"""Conveyor's flat-cost figures (issue 17): SQL statements and Redis commands per task."""
