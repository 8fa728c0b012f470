"""``edgeproof reliability``: bad inputs fed to every entry point and faults injected, with a report."""
