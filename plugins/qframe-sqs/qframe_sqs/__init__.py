"""Amazon SQS broker for qframe: ``broker = "sqs"`` with results in another store."""

from qframe_sqs.broker import SqsBroker, SqsFifoBroker

__all__ = ["SqsBroker", "SqsFifoBroker"]
