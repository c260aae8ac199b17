"""Flow files: the performance team's YAML configuration, validated with positions."""

from m365perf.flows.loader import FlowError, FlowProblem, flow_files, load_flow, parse_flow
from m365perf.flows.model import Flow

__all__ = ["Flow", "FlowError", "FlowProblem", "flow_files", "load_flow", "parse_flow"]
