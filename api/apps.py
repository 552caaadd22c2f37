from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Public data API"

    def ready(self) -> None:
        from api.services import api_answers_revalidate
        from common import cachetags

        # Every process that revalidates pages (web for admin edits, Celery for scores and reports)
        # drops the API's answers with the same tags in the same call.
        cachetags.on_revalidate(api_answers_revalidate)
