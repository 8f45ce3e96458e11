"""aiusage: meter AI/LLM usage per organization on Kafka and ClickHouse."""

__version__ = "0.1.0"
