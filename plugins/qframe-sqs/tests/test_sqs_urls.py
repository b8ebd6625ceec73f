"""Where ``broker_url`` puts the queue (no endpoint needed)."""

from __future__ import annotations

import pytest

from qframe.errors import ConfigError
from qframe_sqs import SqsBroker


def test_a_queue_url_names_the_queue_and_its_region() -> None:
    broker = SqsBroker("https://sqs.eu-west-1.amazonaws.com/123456789012/jobs", "default")
    assert (broker.location.name, broker.location.region) == ("jobs", "eu-west-1")
    assert broker.queue_url == "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"  # never looked up


def test_an_sqs_url_without_a_name_uses_the_qframe_queue_and_its_query_options() -> None:
    broker = SqsBroker("sqs://?region=us-west-2&create_queue=false&wait_time_seconds=5", "reports")
    assert (broker.location.name, broker.location.region) == ("reports", "us-west-2")
    assert (broker.create_queue, broker.longest_poll) == (False, 5)
    assert "region" not in broker.info()  # the query string is not shown


def test_options_win_over_the_query_string() -> None:
    broker = SqsBroker("sqs://named?region=us-west-2", "q", region="eu-central-1")
    assert (broker.location.name, broker.location.region) == ("named", "eu-central-1")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("amqp://host/q", "is not an SQS URL"),
        ("https://example.com/q", "is not an SQS URL"),
        ("sqs://bad name", "SQS queue name 'bad name' is invalid"),
    ],
)
def test_a_wrong_url_is_one_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SqsBroker(url, "q")
