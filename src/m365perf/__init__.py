"""m365perf: a council's performance-management cycle on Microsoft 365."""

__version__ = "0.1.0"
