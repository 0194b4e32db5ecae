"""perpd: a peer-to-peer perpetual-futures venue where AI agents are the liquidity."""

__version__ = "0.1.0"
