# The market-data models left this app for marketdata (their tables were renamed there), and the
# board preference came here from accounts: same table, renamed, rows and content type kept.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def content_type_move(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="live", model="boardpreference").exists():
        ContentType.objects.filter(app_label="accounts", model="boardpreference").update(app_label="live")


def content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="live", model="boardpreference").update(app_label="accounts")


class Migration(migrations.Migration):
    dependencies = [
        ("live", "0002_market_data"),
        ("marketdata", "0001_initial"),
        ("accounts", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name="AggregatorCheckpoint",
                ),
                migrations.DeleteModel(
                    name="EconomicEvent",
                ),
                migrations.RemoveField(
                    model_name="feedstatuschange",
                    name="broker",
                ),
                migrations.RemoveField(
                    model_name="quoterejectioncount",
                    name="broker",
                ),
                migrations.RemoveField(
                    model_name="spreadbar",
                    name="broker",
                ),
                migrations.RemoveField(
                    model_name="spreadbar",
                    name="instrument",
                ),
                migrations.DeleteModel(
                    name="FeedConfig",
                ),
                migrations.DeleteModel(
                    name="FeedStatusChange",
                ),
                migrations.DeleteModel(
                    name="QuoteRejectionCount",
                ),
                migrations.DeleteModel(
                    name="SpreadBar",
                ),
                migrations.CreateModel(
                    name="BoardPreference",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "instruments",
                            models.JSONField(
                                blank=True, default=list, help_text="Canonical symbols, in display order."
                            ),
                        ),
                        (
                            "brokers",
                            models.JSONField(blank=True, default=list, help_text="Broker slugs, in display order."),
                        ),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "user",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="board_preference",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "accounts_boardpreference"},
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="boardpreference", table=None),
        migrations.RunPython(content_type_move, content_type_back),
    ]
