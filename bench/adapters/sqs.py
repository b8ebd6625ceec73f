"""SQS on a local endpoint (moto): qframe-sqs, Celery's SQS transport, Django Q2's SQS broker.

Every run gets a queue of its own, named after its work directory, on the harness's moto
server (``spec.server_url``). SQS keeps no results, so each system stores them where it
would beside SQS on one host: qframe in its SQLite store, Celery in its file-system result
backend, Django Q2 in the Django ORM (SQLite, as in the Redis table).
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from urllib.parse import urlsplit

from adapters.base import Adapter
from adapters.celery import CeleryAdapter
from adapters.djangoq import DjangoQAdapter
from adapters.qframe import QframeAdapter

#: Dummy credentials and region for the local endpoint.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def run_queue(adapter: Adapter) -> str:
    """A queue name of this run alone (SQS names: letters, digits, ``-``, ``_``)."""
    digest = hashlib.sha1(str(adapter.workdir).encode()).hexdigest()[:10]
    return f"bench-{adapter.name}-{digest}"


def sqs_env(adapter: Adapter) -> dict[str, str]:
    """Credentials plus ``AWS_ENDPOINT_URL_SQS``, which boto3 clients without an explicit endpoint read."""
    return {**AWS_ENV, "AWS_ENDPOINT_URL_SQS": str(adapter.spec.server_url)}


class QframeSqsAdapter(QframeAdapter):
    """``qframe cluster`` on the ``sqs`` broker (qframe-sqs), results in qframe's SQLite store."""

    backends = ("sqs",)

    def queue(self) -> str:
        """The run's own SQS queue (qframe names the queue after the cluster)."""
        return run_queue(self)

    def environment(self) -> dict[str, str]:
        """The ``sqs`` broker on the local endpoint and the ``sqlite`` store in the workdir."""
        return {
            **sqs_env(self),
            "QFRAME_NAME": self.queue(),
            "QFRAME_WORKERS": str(self.spec.workers),
            "QFRAME_BROKER": "sqs",
            "QFRAME_BROKER_URL": f"sqs://?region=us-east-1&endpoint_url={self.spec.server_url}",
            "QFRAME_STORE": "sqlite",
            "QFRAME_STORE_URL": f"sqlite:///{self.workdir / 'results.db'}",
            "QFRAME_SECRET_KEY": "qframe-bench-secret",
        }

    def version(self) -> str:
        """qframe's and qframe-sqs's versions."""
        return f"{version('qframe')} (qframe-sqs {version('qframe-sqs')})"


class CelerySqsAdapter(CeleryAdapter):
    """Celery's SQS transport (kombu[sqs], pycurl); results in the file-system backend."""

    backends = ("sqs",)

    def environment(self) -> dict[str, str]:
        """Broker URL and options read by ``tasks/celery_tasks.py``."""
        endpoint = urlsplit(str(self.spec.server_url))
        return {
            **sqs_env(self),
            "BENCH_CELERY_BROKER": f"sqs://testing:testing@{endpoint.hostname}:{endpoint.port}",
            "BENCH_CELERY_BACKEND": f"file://{self.workdir / 'celery-results'}",
            "BENCH_CELERY_QUEUE": run_queue(self),
            "BENCH_CELERY_TRANSPORT": json.dumps({"region": "us-east-1", "is_secure": False}),
        }

    def prepare(self) -> None:
        """Create the result folder, then import the app."""
        (self.workdir / "celery-results").mkdir(exist_ok=True)
        super().prepare()

    def version(self) -> str:
        """Celery's and kombu's versions."""
        return f"{version('celery')} (kombu {version('kombu')}, pycurl {version('pycurl')})"


class DjangoQSqsAdapter(DjangoQAdapter):
    """Django Q2's ``sqs`` broker (boto3), long polling 20 s as its docs advise; results in the ORM."""

    backends = ("sqs",)

    def environment(self) -> dict[str, str]:
        """Django Q2's settings with the SQS broker and the run's queue."""
        return {
            **super().environment(),
            **sqs_env(self),
            "BENCH_DJANGOQ_BROKER": "sqs",
            "BENCH_DJANGOQ_NAME": run_queue(self),
        }

    def version(self) -> str:
        """Django Q2's and boto3's versions."""
        return f"{version('django-q2')} (boto3 {version('boto3')})"
