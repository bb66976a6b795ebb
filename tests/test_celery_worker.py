import pytest

from envmanager.tasks import ping


@pytest.mark.celery_worker
def test_a_task_travels_through_redis_to_a_real_worker(celery_worker):
    result = ping.delay("hello")
    assert result.get(timeout=30) == "pong:hello"
    # It ran in the worker process, not eagerly in this one.
    assert result.task_id and not result.__class__.__name__.startswith("Eager")
