"""Imports every probe module; registration order is the table's order."""
import probes_controls  # noqa: F401
import probes_fs  # noqa: F401
import probes_proc  # noqa: F401
import probes_process  # noqa: F401
import probes_syscalls  # noqa: F401
import probes_net  # noqa: F401
import probes_budgets  # noqa: F401
