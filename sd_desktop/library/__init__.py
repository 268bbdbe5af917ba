"""Finding, describing and fetching models; no Qt here, so it runs in any thread or tool."""
