"""Best-execution calculator: what an order would cost at each broker, and split across them."""
