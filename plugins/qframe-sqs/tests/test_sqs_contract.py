"""qframe's BrokerContract against an SQS HTTP endpoint (moto's server, or QFRAME_SQS_ENDPOINT)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from qframe.brokers.base import Broker
from qframe.errors import ConfigError
from qframe.testing import BrokerContract, free_port
from qframe.testing.contracts import dequeue_all
from qframe_sqs import SqsBroker, SqsFifoBroker

pytestmark = pytest.mark.timeout(90)

#: SQS honours an old receipt handle after a message was received again (AWS documents that
#: a stale handle may still delete it; moto always lets it): claims are not conditional.


def make_broker(endpoint: str, queue: str, lease: float = 30.0, **options: Any) -> SqsBroker:
    """A broker on ``queue`` of ``endpoint`` (region us-east-1 unless the environment names one)."""
    return SqsBroker("sqs://?region=us-east-1", queue, lease=lease, endpoint_url=endpoint, **options)


def make_fifo_broker(endpoint: str, queue: str) -> SqsFifoBroker:
    """A broker on the FIFO queue ``<queue>.fifo`` of ``endpoint``."""
    return SqsFifoBroker("sqs://?region=us-east-1", queue, lease=30.0, endpoint_url=endpoint)


class TestSqsBroker(BrokerContract):
    """BrokerContract on a standard queue."""

    @pytest.fixture
    def broker_factory(self, sqs_endpoint: str) -> Any:
        return lambda queue, lease: make_broker(sqs_endpoint, queue, lease)

    @pytest.fixture
    def dead_broker(self) -> Broker:
        return make_broker(f"http://127.0.0.1:{free_port()}", "q", 5)

    @pytest.fixture
    def write_malformed(self, sqs_endpoint: str) -> Any:
        def write(queue: str) -> list[str]:
            client = boto3.client("sqs", region_name="us-east-1", endpoint_url=sqs_endpoint)
            url = client.get_queue_url(QueueName=queue)["QueueUrl"]
            client.send_message(QueueUrl=url, MessageBody="this is not base64!")
            client.close()
            return ["not base64"]

        return write


def test_fifo_queue_keeps_the_order_within_its_message_group(sqs_endpoint: str) -> None:
    broker = make_fifo_broker(sqs_endpoint, f"order-{uuid.uuid4().hex[:8]}")
    try:
        broker.enqueue_many([f"m{i}".encode() for i in range(4)])
        broker.enqueue(b"m4")
        got = dequeue_all(broker, 5)
        assert [m.payload for m in got] == [f"m{i}".encode() for i in range(5)]
        broker.ack_many([m.ack_id for m in got])
    finally:
        broker.purge()
        broker.close()


def test_fifo_queue_drops_the_same_payload_sent_again(sqs_endpoint: str) -> None:
    broker = make_fifo_broker(sqs_endpoint, f"dedup-{uuid.uuid4().hex[:8]}")
    try:
        broker.enqueue(b"same signed task")
        broker.enqueue(b"same signed task")  # moto answers with a new MessageId, SQS with the first
        [message] = dequeue_all(broker, 1)
        broker.ack(message.ack_id)  # a FIFO group hands out nothing more while one is in flight
        assert broker.dequeue(1, wait=1.0) == []
    finally:
        broker.purge()
        broker.close()


def test_a_missing_queue_without_create_queue_is_a_config_error(sqs_endpoint: str) -> None:
    broker = make_broker(sqs_endpoint, f"absent-{uuid.uuid4().hex[:8]}", create_queue=False)
    with pytest.raises(ConfigError, match=r"the queue does not exist"):
        broker.ping()


def test_a_body_that_is_not_base64_is_reported_malformed(sqs_endpoint: str) -> None:
    broker = make_broker(sqs_endpoint, f"bad-{uuid.uuid4().hex[:8]}")
    try:
        broker.client.send_message(QueueUrl=broker.queue_url, MessageBody="{not: base64}")
        [message] = dequeue_all(broker, 1)
        assert (message.malformed, message.payload) == ("message body is not base64", b"{not: base64}")
    finally:
        broker.purge()
        broker.close()


def test_redrive_policy_moves_a_message_received_too_often_to_the_dead_letter_queue(
    sqs_endpoint: str,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    broker = make_broker(
        sqs_endpoint, f"redrive-{suffix}", 1.0, dead_letter_queue=f"redrive-{suffix}-dlq", max_receive_count=1
    )
    dlq = make_broker(sqs_endpoint, f"redrive-{suffix}-dlq")
    try:
        broker.enqueue(b"poison")
        [first] = dequeue_all(broker, 1)
        broker.nack(first.ack_id)  # received once already: the next receive redrives it
        assert broker.dequeue(1, wait=2.0) == []
        assert [m.payload for m in dequeue_all(dlq, 1)] == [b"poison"]
    finally:
        broker.purge()
        dlq.purge()
        broker.close()
        dlq.close()


def test_fifo_broker_names_its_queue_fifo_and_the_standard_broker_refuses_one(sqs_endpoint: str) -> None:
    assert make_fifo_broker(sqs_endpoint, "jobs").location.name == "jobs.fifo"
    with pytest.raises(ConfigError, match=r'SQS queue jobs.fifo is a FIFO queue: set broker = "sqs-fifo"'):
        make_broker(sqs_endpoint, "jobs.fifo")
