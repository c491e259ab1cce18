// Placeholder so the library has a source until the MCP core lands.
