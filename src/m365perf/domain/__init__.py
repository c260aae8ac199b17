"""Pure domain rules: periods, working days, RAG, direction, values, approvers, SPC.

Nothing here does I/O or reads the clock; callers pass "today" in.
"""
