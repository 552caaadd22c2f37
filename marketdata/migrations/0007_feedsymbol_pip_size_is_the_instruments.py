"""A mapped venue symbol no longer has a pip size of its own: the instrument's is the only one.

Reversible: going back, each symbol's pip size is filled in from its instrument.
"""

from decimal import Decimal
from typing import Any

import django.core.validators
from django.db import migrations, models


def pip_sizes_from_instruments(apps: Any, schema_editor: Any) -> None:
    FeedSymbol = apps.get_model("marketdata", "FeedSymbol")
    for symbol in FeedSymbol.objects.select_related("instrument"):
        symbol.pip_size = symbol.instrument.pip_size
        symbol.save(update_fields=["pip_size"])


class Migration(migrations.Migration):
    dependencies = [
        ("marketdata", "0006_merge_write_mark_and_reliability"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="feedsymbol",
            name="feedsymbol_pip_size_positive",
        ),
        # Nullable first, so that going back the column can be added before it is filled.
        migrations.AlterField(
            model_name="feedsymbol",
            name="pip_size",
            field=models.DecimalField(
                decimal_places=8,
                max_digits=12,
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("1E-8"), message="Pip size must be positive.")
                ],
            ),
        ),
        migrations.RunPython(migrations.RunPython.noop, pip_sizes_from_instruments),
        migrations.RemoveField(
            model_name="feedsymbol",
            name="pip_size",
        ),
    ]
