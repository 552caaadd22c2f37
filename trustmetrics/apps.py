from django.apps import AppConfig


class TrustmetricsConfig(AppConfig):
    name = "trustmetrics"
    verbose_name = "TrustMetrics"
