"""The job's one error type."""


class JobError(Exception):
  """A failure of the job that deserves one line, not a traceback (main.py prints it)."""


# What main.py reports as one `error:` line: the job's own failures and the bad values,
# paths and files a config names (a traceback would tell the user nothing more).
USER_ERRORS = (JobError, ValueError, OSError)
