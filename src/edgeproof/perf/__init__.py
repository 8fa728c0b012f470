"""``edgeproof perf``: edgeproof's runtime against the tools a user would otherwise ship, side by side."""
