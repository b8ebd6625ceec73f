"""MongoDB broker and result store drivers for qframe.

Install ``qframe-mongo`` and set ``broker = "mongo"`` and ``broker_url = "mongodb://host/db"``;
see the package README for the document layout and what was tested against what.
"""

from qframe_mongo.broker import MongoBroker
from qframe_mongo.store import MongoStore

__all__ = ["MongoBroker", "MongoStore"]
