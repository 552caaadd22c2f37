from django.apps import AppConfig


class BrokersConfig(AppConfig):
    name = "brokers"
    verbose_name = "Brokers"

    def ready(self) -> None:
        from brokers import signals  # noqa: F401
        from brokers.sitemaps import public_urls
        from pagecache.services import pages_register_urls

        pages_register_urls(public_urls)
