"""aiusage consumer package."""
