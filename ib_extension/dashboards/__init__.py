"""The interviewer's Voilà dashboards, as Python the notebooks in notebooks/ only call.

Each page is a class whose `widget` is the whole page and whose `start()` reads from
the ib service (through its REST API; never the database) on the dashboard kernel's
own asyncio loop:

- `Monitor` (monitor.ipynb): every session, one session live, and its controls;
- `CreatePage` (create.ipynb): the new-session form and what to hand the candidate;
- `AnalyticsPage` (analytics.ipynb): summary cards, charts, comparison, export.

A kernel started by `ib serve` has IB_URL and IB_TOKEN_FILE (the path of the interviewer
token, never its value), so the pages need no arguments.
"""

from .analytics_page import AnalyticsPage
from .create import CreatePage
from .monitor import Monitor

__all__ = ["AnalyticsPage", "CreatePage", "Monitor"]
