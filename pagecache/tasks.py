from __future__ import annotations

from celery import shared_task

from pagecache import isr, services


@shared_task(acks_late=True, ignore_result=True)
def pages_regenerate(key: str, path: str, query: str) -> str:
    return isr.regenerate(key, path=path, query=query)


@shared_task(acks_late=True, ignore_result=True)
def pages_prerender_all() -> int:
    return len(services.pages_prerender())
