"""The release choice: which variant each device profile runs, by evidence (``reports/release.json``)."""
