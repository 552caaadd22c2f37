from __future__ import annotations

from celery import shared_task

from pagecache import isr, services


# Routed to its own queue (settings.PAGECACHE_QUEUE, CELERY_TASK_ROUTES) and worker, so that a
# revalidation never waits behind score recomputes, reports or the periodic prerender.
@shared_task(acks_late=True, ignore_result=True)
def pages_regenerate(key: str, path: str, query: str) -> str:
    return isr.regenerate(key, path=path, query=query, unless_current=True)


@shared_task(acks_late=True, ignore_result=True)
def pages_prerender_all() -> int:
    return len(services.pages_prerender())
