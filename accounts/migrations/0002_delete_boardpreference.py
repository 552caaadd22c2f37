# The board preference moved to the live app (live 0003 renamed its table): only the state goes here.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("live", "0003_move_market_data_and_board"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="BoardPreference")]),
    ]
