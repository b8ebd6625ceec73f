"""MongoDB wire (SecantusDB): qframe-mongo against Django Q2's ``mongo`` broker (pymongo).

Every run uses a database of its own, named after its work directory, on the harness's
server (``spec.server_url``). qframe keeps its results in its Mongo store (the default
beside the mongo broker); Django Q2 keeps them in the Django ORM (SQLite), its design.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version

from adapters.base import Adapter
from adapters.djangoq import DjangoQAdapter
from adapters.qframe import QframeAdapter


def run_database(adapter: Adapter) -> str:
    """A database name of this run alone."""
    return "bench_" + hashlib.sha1(str(adapter.workdir).encode()).hexdigest()[:10]


class QframeMongoAdapter(QframeAdapter):
    """``qframe cluster`` on the ``mongo`` broker and store (qframe-mongo)."""

    backends = ("mongo",)

    def environment(self) -> dict[str, str]:
        """The ``mongo`` broker on the run's database; the store follows the broker."""
        return {
            "QFRAME_NAME": self.queue(),
            "QFRAME_WORKERS": str(self.spec.workers),
            "QFRAME_BROKER": "mongo",
            "QFRAME_BROKER_URL": f"{self.spec.server_url}/{run_database(self)}",
            "QFRAME_SECRET_KEY": "qframe-bench-secret",
        }

    def version(self) -> str:
        """qframe's and qframe-mongo's versions."""
        return f"{version('qframe')} (qframe-mongo {version('qframe-mongo')})"


class DjangoQMongoAdapter(DjangoQAdapter):
    """Django Q2's ``mongo`` broker on the run's database; results in the ORM (SQLite)."""

    backends = ("mongo",)

    def environment(self) -> dict[str, str]:
        """Django Q2's settings with the mongo broker."""
        return {
            **super().environment(),
            "BENCH_DJANGOQ_BROKER": "mongo",
            "BENCH_MONGO_URL": str(self.spec.server_url),
            "BENCH_MONGO_DB": run_database(self),
        }

    def version(self) -> str:
        """Django Q2's and pymongo's versions."""
        return f"{version('django-q2')} (pymongo {version('pymongo')})"
