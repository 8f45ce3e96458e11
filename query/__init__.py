"""aiusage query package."""
