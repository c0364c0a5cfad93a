"""kpi room."""
