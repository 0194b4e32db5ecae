"""`perpd mcp`: an MCP server that lets a language model trade as one agent, inside
limits a person sets. Importing this package imports nothing heavy: the MCP SDK is
loaded by `perpd.mcp.server`, when the command runs."""
