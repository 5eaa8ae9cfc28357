"""The work pool Conveyor's deployments run on: a ``process`` pool, created when missing.

A process worker (``prefect worker start --pool NAME``) started from this checkout's environment imports the flows
by module path (``flows.bootstrap.bootstrap``...) from the installed project: nothing is pulled or built.
"""

from __future__ import annotations

from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.workers.process import ProcessWorker

POOL_TYPE = "process"


def ensure_work_pool(name: str) -> bool:
    """Create the ``process`` work pool ``name`` if it does not exist; True when this call created it.

    An existing pool is left as it is (its type, template and paused state are a person's to change).
    """
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            pass
        # The process worker's own default job template, as `prefect work-pool create --type process` would use;
        # an empty template would drop the deployments' job variables (the heartbeat setting).
        template = ProcessWorker.get_default_base_job_template()
        pool = WorkPoolCreate(name=name, type=POOL_TYPE, base_job_template=template)
        try:
            client.create_work_pool(pool)
        except ObjectAlreadyExists:  # created meanwhile by another `conveyor deploy`
            return False
        return True
