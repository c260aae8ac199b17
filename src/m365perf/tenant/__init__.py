"""The tenant side of going live: which SharePoint lists a flow needs, creating them, checking them.

Stands on the flow model and the Microsoft 365 clients; the domain never imports it.
"""

from m365perf.tenant.lists import (
    ANY_TYPE,
    BUILTIN_COLUMNS,
    ColumnSpec,
    ListSpec,
    actions_list,
    history_list,
    results_list,
)
from m365perf.tenant.provision import Action, Finding, ProvisionReport, provision

__all__ = [
    "ANY_TYPE",
    "BUILTIN_COLUMNS",
    "Action",
    "ColumnSpec",
    "Finding",
    "ListSpec",
    "ProvisionReport",
    "actions_list",
    "history_list",
    "provision",
    "results_list",
]
