"""Errors that reach an operator as one line of text."""


class AiusageError(Exception):
    """An error whose message is a complete, one-line explanation for an operator."""

    exit_code = 1


class ConfigError(AiusageError):
    """Settings or command-line arguments are invalid. Each line names one field."""

    exit_code = 2


class ClickHouseUnavailable(AiusageError):
    """ClickHouse could not be reached or opened."""


class KafkaUnavailable(AiusageError):
    """The Kafka cluster could not be reached."""


class SchemaError(AiusageError):
    """The database schema cannot be brought to the version this code expects."""
