"""The reconciler's timer: start releases for pushes no webhook delivered.

Its schedule is the app setting RECONCILE_SCHEDULE (NCRONTAB, or a TimeSpan such as 00:05:00;
the samples say every 5 minutes, `0 */5 * * * *`). Without the setting the Functions host
reports the function in error and devhost refuses to start.
"""

from __future__ import annotations

import logging
import os

import azure.durable_functions as df
import azure.functions as func

from blueprints import blueprint
from shared.app_context import app_async_ledger, app_policy_async
from shared.ingest.reconciler import reconcile
from shared.ingest.service import Ingestor
from shared.registry import registries
from triggers.durable_adapter import ClientDurable

log = logging.getLogger(__name__)
bp = blueprint()
MAX_IMAGES_SETTING = "RECONCILE_MAX_IMAGES"
SCHEDULE_SETTING = "RECONCILE_SCHEDULE"
DEFAULT_SCHEDULE = "0 */5 * * * *"  # what the samples set: every 5 minutes


@bp.timer_trigger(schedule=f"%{SCHEDULE_SETTING}%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def reconcile_registries(timer: func.TimerRequest,
                               client: df.DurableOrchestrationClient) -> None:
    """List every configured repository's tags and catch up on what the ledger never saw."""
    max_images = int(os.environ.get(MAX_IMAGES_SETTING) or 20)
    ingestor = Ingestor(await app_policy_async(), app_async_ledger(), ClientDurable(client))
    for report in await reconcile(ingestor.policy, ingestor, registries.for_endpoint,
                                  max_images=max_images):
        log.info("reconciled %s: %s", report.service, report.to_dict())
