"""Market simulator: reference markets, an economic calendar and 14 broker profiles. Pure: no Django."""
