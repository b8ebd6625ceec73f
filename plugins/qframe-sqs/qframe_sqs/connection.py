"""Where an SQS queue is and how to talk to it: URL parsing, the boto3 client, error mapping.

``broker_url`` is either ``sqs://[queue-name][?region=...&endpoint_url=...]`` (the queue
name defaults to qframe's queue name) or an SQS queue URL ``https://sqs.<region>.amazonaws.com/<account>/<name>``.
Credentials come from boto3's usual sources (environment, profile, instance role) and are
never part of a log line or an error.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import botocore.config
import botocore.exceptions

from qframe.errors import BrokerError, ConfigError

#: Error codes that no retry can fix: reported once at start-up (exit 2), not retried.
PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "InvalidAddress",
    }
)
#: Error codes that mean the queue is gone (deleted, or the endpoint restarted empty).
MISSING_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
#: A long poll plus this margin is the read timeout, so a 20 s poll never times out.
READ_MARGIN = 10.0
QUEUE_URL = re.compile(r"^https?://sqs[.-]([a-z0-9-]+)\.[^/]+/(\d+)/([^/?]+)$")


@dataclass(frozen=True, slots=True)
class Location:
    """The queue to use: its name, or its URL when the broker URL is one, and the client settings."""

    name: str
    queue_url: str | None
    region: str | None
    endpoint_url: str | None

    @property
    def fifo(self) -> bool:
        """FIFO queues are named ``*.fifo`` by SQS's rule."""
        return self.name.endswith(".fifo")


def parse(url: str | None, queue: str, options: Mapping[str, Any]) -> tuple[Location, dict[str, str]]:
    """The queue location of ``url`` and the options its query string sets (options win)."""
    if not url or url in ("sqs", "sqs:", "sqs://"):
        return _location(queue, None, options, {}), {}
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme == "sqs":
        name = (parts.netloc + parts.path).strip("/") or queue
        return _location(name, None, options, query), query
    match = QUEUE_URL.match(f"{parts.scheme}://{parts.netloc}{parts.path}")
    if parts.scheme in ("http", "https") and match:
        region, _, name = match.groups()
        merged = {"region": region, **query}
        return _location(name, f"{parts.scheme}://{parts.netloc}{parts.path}", options, merged), query
    raise ConfigError(
        f"broker_url {redacted(url)!r} is not an SQS URL: use sqs://queue-name?region=... "
        "or https://sqs.<region>.amazonaws.com/<account>/<queue>"
    )


def _location(
    name: str, queue_url: str | None, options: Mapping[str, Any], query: dict[str, str]
) -> Location:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,75}(\.fifo)?", name):
        raise ConfigError(
            f"SQS queue name {name!r} is invalid: 1 to 80 letters, digits, '-' or '_' "
            "(FIFO queues end in .fifo)"
        )
    region = options.get("region") or query.get("region")
    endpoint = options.get("endpoint_url") or query.get("endpoint_url")
    return Location(name, queue_url, str(region) if region else None, str(endpoint) if endpoint else None)


def redacted(url: str | None) -> str:
    """``url`` without a query string (which may hold an endpoint's credentials)."""
    return (url or "sqs://").split("?", 1)[0]


def make_client(location: Location, longest_poll: float) -> Any:
    """A boto3 SQS client with bounded retries (throttling, transient network errors) and timeouts."""
    config = botocore.config.Config(
        connect_timeout=3,
        read_timeout=longest_poll + READ_MARGIN,
        retries={"max_attempts": 4, "mode": "standard"},
    )
    try:
        return boto3.session.Session().client(
            "sqs", region_name=location.region, endpoint_url=location.endpoint_url, config=config
        )
    except botocore.exceptions.NoRegionError as exc:
        raise ConfigError(
            "the sqs broker needs a region: add ?region=... to broker_url or set AWS_REGION"
        ) from exc
    except (botocore.exceptions.BotoCoreError, ValueError) as exc:
        raise ConfigError(f"cannot build an SQS client: {exc}") from exc


def error_code(exc: BaseException) -> str:
    """The SQS error code of a ``ClientError`` (empty for anything else)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class QueueMissing(BrokerError):
    """The queue does not exist (any more); the broker looks it up (and creates it) again."""


@contextlib.contextmanager
def errors(where: str) -> Iterator[None]:
    """Turn botocore's errors into one-line ``BrokerError``\\ s naming ``where``."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or code
        if code in MISSING_QUEUE_CODES:
            raise QueueMissing(f"{where}: the queue does not exist ({code})") from exc
        raise BrokerError(f"{where}: {code}: {message}") from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise ConfigError(
            f"{where}: no AWS credentials found (environment, profile or instance role)"
        ) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise BrokerError(f"{where} is unreachable: {exc}") from exc
