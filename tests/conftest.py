"""Shared fixtures. Backend fixtures live in fixtures_*.py plugin modules."""

pytest_plugins = [
    "fixtures_require",
    "fixtures_store",
    "fixtures_phoenix",
    "fixtures_graph",
    "fixtures_blockbuster",
    "fixtures_server",
    "fault_report",
]
