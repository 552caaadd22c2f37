from __future__ import annotations

import pytest


@pytest.fixture
def staff_client(client, django_user_model):
    """The test client logged in as a superuser: the admin's daily work."""
    user = django_user_model.objects.create_user("editor", password="pw-editor-123", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client
