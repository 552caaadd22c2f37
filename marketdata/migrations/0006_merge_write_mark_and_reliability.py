# Joins two migrations made side by side this session (the ingest write marks and the bars' reliability measures).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("marketdata", "0005_ingest_write_mark"),
        ("marketdata", "0005_spreadbar_reliability_measures"),
    ]

    operations = []
