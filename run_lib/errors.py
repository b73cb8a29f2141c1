"""The job's one error type."""


class JobError(Exception):
  """A failure of the job that deserves one line, not a traceback (main.py prints it)."""
