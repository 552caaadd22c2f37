import pytest


@pytest.mark.django_db
def test_the_directory_renders_against_real_postgres_and_redis(client):
    from brokers.services import demo_seed

    demo_seed()
    response = client.get("/brokers/")
    assert response.status_code == 200
    assert b"Northwind Markets" in response.content
