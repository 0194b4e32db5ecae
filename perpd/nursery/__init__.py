"""Long-running services, one per module, each `run(..., task_status=...)` (trio's start)."""
