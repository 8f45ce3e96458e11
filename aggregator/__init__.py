"""aiusage aggregator package."""
