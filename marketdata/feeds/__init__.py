"""Feed adapters: each turns one broker's price feed into normalised quotes and status events."""
