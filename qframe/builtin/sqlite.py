"""The embedded default: broker and store (results, statuses, dead letters) in one SQLite file.

WAL mode lets producers, the cluster and ``qframe info`` read and write at once. A claim is
one ``UPDATE ... RETURNING`` statement, so two clusters on one file never get the same
message. Each claim writes a fresh token; ack, nack and touch match on it.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from qframe.brokers.base import Broker, Message
from qframe.errors import BrokerError, QFrameError, StoreError
from qframe.project import DEFAULT_PATH
from qframe.schedulers.base import DEFAULT_KEEP, ScheduleStore
from qframe.stores.base import (
    SAVE_LIMIT_PER,
    DeadLetter,
    DeadLetterStore,
    ResultMeta,
    StatusStore,
    Store,
    Tally,
)
from qframe.stores.delays import DelayStore, HeldTask

BUSY_TIMEOUT = 30.0
#: Seconds between two looks at ``PRAGMA data_version`` while waiting for another process's
#: commit; a broker that claimed nothing, or a result wait that got nothing, for
#: :data:`QUIET_AFTER` seconds looks every :data:`QUIET_CHECK` seconds.
COMMIT_CHECK = 0.001
QUIET_CHECK = 0.005
QUIET_AFTER = 1.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS qframe_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    payload BLOB NOT NULL,
    visible REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    token TEXT
);
CREATE INDEX IF NOT EXISTS qframe_queue_ready ON qframe_queue (queue, visible, id);
CREATE TABLE IF NOT EXISTS qframe_dead (
    id INTEGER PRIMARY KEY, queue TEXT NOT NULL, payload BLOB NOT NULL,
    reason TEXT NOT NULL, created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS qframe_stats (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS qframe_quarantine (
    queue TEXT NOT NULL, message_id TEXT NOT NULL, reason TEXT NOT NULL, payload BLOB NOT NULL,
    created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (queue, message_id)
);
CREATE TABLE IF NOT EXISTS qframe_results (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, func TEXT NOT NULL, grp TEXT,
    success INTEGER NOT NULL, started REAL NOT NULL, stopped REAL NOT NULL,
    attempts INTEGER NOT NULL, cluster TEXT NOT NULL, blob BLOB NOT NULL, expires REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS qframe_results_group ON qframe_results (grp, stopped);
CREATE INDEX IF NOT EXISTS qframe_results_success ON qframe_results (success, stopped);
CREATE INDEX IF NOT EXISTS qframe_results_stopped ON qframe_results (stopped);
CREATE TABLE IF NOT EXISTS qframe_schedules (id TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS qframe_slots (
    schedule TEXT NOT NULL, slot INTEGER NOT NULL, owner TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (schedule, slot)
);
CREATE TABLE IF NOT EXISTS qframe_held (
    id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, payload BLOB NOT NULL,
    due REAL NOT NULL, claimed_until REAL NOT NULL DEFAULT 0, token TEXT
);
CREATE INDEX IF NOT EXISTS qframe_held_due ON qframe_held (queue, due);
"""

#: Indexes of the columns added after the first release (``expires``); made after the upgrade.
RESULT_INDEXES = """
CREATE INDEX IF NOT EXISTS qframe_results_name ON qframe_results (name, stopped);
CREATE INDEX IF NOT EXISTS qframe_results_expires ON qframe_results (expires) WHERE expires > 0;
"""

#: Insert a result, or replace a saved failure; a saved success stays (the first success is final).
SAVE_RESULT = (
    "INSERT INTO qframe_results VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET "
    "name = excluded.name, func = excluded.func, grp = excluded.grp, success = excluded.success, "
    "started = excluded.started, stopped = excluded.stopped, attempts = excluded.attempts, "
    "cluster = excluded.cluster, blob = excluded.blob, expires = excluded.expires "
    "WHERE qframe_results.success = 0"
)

#: The condition of a result that has not expired (bind the current time).
LIVE = "(expires = 0 OR expires > ?)"
#: Most expired results deleted per save.
EXPIRED_BATCH = 1000
#: The column of each ``save_limit_per`` field.
PER_COLUMN = {"group": "grp", "name": "name", "func": "func"}


def db_path(url: str | None, error: type[QFrameError] = BrokerError) -> Path:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL (or a plain path).

    A malformed URL raises ``error`` (the broker's or the store's error class).
    """
    if not url:
        return Path(DEFAULT_PATH)
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        if not rest.startswith("/"):
            raise error(f"malformed SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////abs.db")
        return Path(rest[1:] or DEFAULT_PATH)
    if "://" in url:
        raise error(f"the sqlite driver cannot use {url!r}: expected sqlite:///path/to/file.db")
    return Path(url)


class Database:
    """One connection to the qframe SQLite file, shared by the threads of one object.

    Failures raise ``error``: :class:`BrokerError` for the broker, :class:`StoreError` for the store.
    """

    def __init__(self, url: str | None, error: type[QFrameError] = BrokerError) -> None:
        self.error = error
        self.path = db_path(url, error)
        self.lock = threading.Lock()
        try:
            if self.path.parent != Path():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            self._enable_wal()
            self.conn.execute("PRAGMA synchronous=NORMAL")
            with self.lock:
                self.conn.executescript(SCHEMA)
                add_new_columns(self.conn)
                self.conn.executescript(RESULT_INDEXES)
        except (sqlite3.Error, OSError) as exc:
            raise error(f"cannot open SQLite database {self.path}: {exc}") from exc

    def _enable_wal(self) -> None:
        # Switching a new file to WAL fails at once with "database is locked" while another
        # connection does the same (SQLite calls no busy handler there), so retry it.
        deadline = time.monotonic() + BUSY_TIMEOUT
        pause = 0.001
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.05)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        """Run one statement and return its rows."""
        try:
            with self.lock:
                return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self.error(f"SQLite error on {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error)."""
        try:
            with self.lock:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self.error(f"SQLite error on {self.path}: {exc}") from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many rows in one write transaction."""
        with self.write() as conn:
            conn.executemany(sql, rows)

    def data_version(self) -> int:
        """``PRAGMA data_version``: it changes once another connection committed to the file."""
        return int(self.execute("PRAGMA data_version")[0][0])

    def wait_for_commit(self, seen: int, timeout: float, active: float) -> None:
        """Sleep until another connection commits after version ``seen``, at most ``timeout`` s.

        A look at the version costs about 1.5 µs and takes no lock, so it is made every
        millisecond, and every 5 ms once the waiter's last activity (``active``, a
        ``time.monotonic()``) is :data:`QUIET_AFTER` old; the statement that waits (a
        claim, a result read) runs again only when something changed, not on a backoff
        that lets a new task wait 50 ms.
        """
        deadline = time.monotonic() + timeout
        while self.data_version() == seen:
            now = time.monotonic()
            if now >= deadline:
                return
            pause = QUIET_CHECK if now - active > QUIET_AFTER else COMMIT_CHECK
            time.sleep(min(pause, deadline - now))

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()


#: Columns added to tables after their first release, with their definitions, by table.
NEW_COLUMNS = {
    "qframe_dead": {"attempts": "INTEGER NOT NULL DEFAULT 0", "last_error": "TEXT NOT NULL DEFAULT ''"},
    "qframe_quarantine": {"attempts": "INTEGER NOT NULL DEFAULT 0", "last_error": "TEXT NOT NULL DEFAULT ''"},
    "qframe_results": {"expires": "REAL NOT NULL DEFAULT 0"},
}


def add_new_columns(conn: sqlite3.Connection) -> None:
    """Give the tables of a file made by an older qframe their newer columns."""
    for table, columns in NEW_COLUMNS.items():
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column, definition in columns.items():
            if column not in present:
                try:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                except sqlite3.OperationalError as exc:  # another process added it just now
                    if "duplicate column" not in str(exc):
                        raise


def _malformed(kind: str) -> str:
    """What is wrong with a queued payload of SQLite type ``kind`` (enqueue always writes a blob)."""
    return "" if kind == "blob" else f"payload stored as {kind}, not as a blob"


def _split(ack_id: str) -> tuple[int, str]:
    row, _, token = ack_id.partition(":")
    return int(row), token


class SQLiteBroker(Broker):
    """The embedded broker: a table of messages with leases, in a local file."""

    fifo = True
    exact_sizes = True
    can_release = True
    #: SQLite's default row limit (SQLITE_MAX_LENGTH, 10**9 bytes) less room for the other columns.
    max_payload = 999_000_000
    max_delay = None
    lease_resolution = 0.001
    has_dead_letters = True
    blocking_dequeue = False
    conditional_claims = True

    def __init__(
        self, url: str | None, queue: str, *, lease: float = 60.0, poll: float = 0.05, **options: Any
    ) -> None:
        super().__init__(url, queue, lease=lease, poll=poll, **options)
        self.db = Database(url)
        self._claimed_at = time.monotonic()  # when a claim last found messages

    @classmethod
    def local_key_file(cls, url: str | None) -> Path:
        """The generated secret key lives beside the database, as ``<db>.key``."""
        path = db_path(url)
        return path.with_name(path.name + ".key")

    @classmethod
    def local_file(cls, url: str | None) -> Path:
        """The database file."""
        return db_path(url).absolute()

    def info(self) -> str:
        """The database file and queue."""
        return f"sqlite {self.db.path.resolve()} queue={self.queue}"

    def enqueue(self, payload: bytes, delay: float = 0.0) -> str:
        """Insert one message."""
        rows = self.db.execute(
            "INSERT INTO qframe_queue (queue, payload, visible) VALUES (?, ?, ?) RETURNING id",
            (self.queue, payload, time.time() + delay),
        )
        return str(rows[0][0])

    def enqueue_many(self, payloads: Sequence[bytes]) -> list[str]:
        """Insert several messages in one transaction."""
        now = time.time()
        sql = "INSERT INTO qframe_queue (queue, payload, visible) VALUES (?, ?, ?) RETURNING id"
        with self.db.write() as conn:
            ids = [str(conn.execute(sql, (self.queue, payload, now)).fetchone()[0]) for payload in payloads]
        return ids

    def _claim(self, count: int) -> list[Message]:
        now = time.time()
        if not self.db.execute(
            "SELECT 1 FROM qframe_queue WHERE queue = ? AND visible <= ? LIMIT 1", (self.queue, now)
        ):
            return []
        token = secrets.token_hex(8)
        # The payload is read as a blob whatever its type, so a TEXT payload that is not UTF-8
        # cannot fail the whole claim; its type says whether enqueue wrote it.
        rows = self.db.execute(
            "UPDATE qframe_queue SET visible = ?, attempts = attempts + 1, token = ? "
            "WHERE id IN (SELECT id FROM qframe_queue WHERE queue = ? AND visible <= ? "
            "ORDER BY visible, id LIMIT ?) RETURNING id, CAST(payload AS BLOB), attempts, typeof(payload)",
            (now + self.lease, token, self.queue, now, count),
        )
        rows.sort()
        return [
            Message(f"{row}:{token}", payload or b"", attempts, str(row), _malformed(kind))
            for row, payload, attempts, kind in rows
        ]

    def dequeue(self, count: int = 1, wait: float = 0.0) -> list[Message]:
        """Claim up to ``count`` messages, waiting up to ``wait`` s for one.

        The claim runs again as soon as another process commits (an enqueue), and every
        ``poll`` seconds for delayed messages coming due and leases running out.
        """
        deadline = time.monotonic() + wait
        while True:
            seen = self.db.data_version()
            messages = self._claim(count)
            now = time.monotonic()
            if messages:
                self._claimed_at = now
            if messages or now >= deadline:
                return messages
            self.db.wait_for_commit(seen, min(deadline - now, self.poll), self._claimed_at)

    def ack(self, ack_id: str) -> None:
        """Delete the message if this delivery still holds it."""
        self.db.execute("DELETE FROM qframe_queue WHERE id = ? AND token = ?", _split(ack_id))

    def ack_many(self, ack_ids: Iterable[str]) -> None:
        """Delete several messages in one transaction."""
        self.db.executemany(
            "DELETE FROM qframe_queue WHERE id = ? AND token = ?", [_split(a) for a in ack_ids]
        )

    def nack(self, ack_id: str) -> None:
        """Make the message visible now."""
        row, token = _split(ack_id)
        self.db.execute(
            "UPDATE qframe_queue SET visible = ?, token = NULL WHERE id = ? AND token = ?",
            (time.time(), row, token),
        )

    def release(self, ack_ids: Sequence[str]) -> None:
        """Make these messages visible now and take back the delivery count."""
        now = time.time()
        self.db.executemany(
            "UPDATE qframe_queue SET visible = ?, token = NULL, attempts = attempts - 1 "
            "WHERE id = ? AND token = ?",
            [(now, *_split(ack_id)) for ack_id in ack_ids],
        )

    def touch(self, ack_ids: Sequence[str]) -> None:
        """Restart the leases of these deliveries."""
        until = time.time() + self.lease
        self.db.executemany(
            "UPDATE qframe_queue SET visible = ? WHERE id = ? AND token = ?",
            [(until, *_split(ack_id)) for ack_id in ack_ids],
        )

    def quarantine(self, ack_id: str, reason: str, attempts: int = 0, last_error: str = "") -> None:
        """Move the message to the dead-letter table."""
        row, token = _split(ack_id)
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO qframe_dead "
                "(id, queue, payload, reason, created, attempts, last_error) "
                "SELECT id, queue, CAST(payload AS BLOB), ?, ?, ?, ? FROM qframe_queue "
                "WHERE id = ? AND token = ?",
                (reason, time.time(), attempts, last_error, row, token),
            )
            conn.execute("DELETE FROM qframe_queue WHERE id = ? AND token = ?", (row, token))

    def dead_letters(self) -> list[DeadLetter]:
        """The quarantined messages of this queue, oldest first."""
        rows = self.db.execute(
            "SELECT id, reason, payload, attempts, last_error, created FROM qframe_dead "
            "WHERE queue = ? ORDER BY id",
            (self.queue,),
        )
        return [DeadLetter(str(row), *rest) for row, *rest in rows]

    def remove_dead_letters(self, message_ids: Sequence[str]) -> int:
        """Delete these dead letters of this queue."""
        rows = [int(m) for m in message_ids if m.isdigit()]
        with self.db.write() as conn:
            return sum(
                conn.execute("DELETE FROM qframe_dead WHERE queue = ? AND id = ?", (self.queue, row)).rowcount
                for row in rows
            )

    def queue_size(self) -> int:
        """Messages not leased now."""
        rows = self.db.execute(
            "SELECT count(*) FROM qframe_queue WHERE queue = ? AND (token IS NULL OR visible <= ?)",
            (self.queue, time.time()),
        )
        return int(rows[0][0])

    def lock_size(self) -> int:
        """Messages leased now."""
        rows = self.db.execute(
            "SELECT count(*) FROM qframe_queue WHERE queue = ? AND token IS NOT NULL AND visible > ?",
            (self.queue, time.time()),
        )
        return int(rows[0][0])

    def purge(self) -> None:
        """Delete this queue's messages."""
        self.db.execute("DELETE FROM qframe_queue WHERE queue = ?", (self.queue,))

    def ping(self) -> bool:
        """Check that the file answers a query."""
        self.db.execute("SELECT 1")
        return True

    def close(self) -> None:
        """Close the connection."""
        self.db.close()


class SQLiteStore(Store, StatusStore, DeadLetterStore, ScheduleStore, DelayStore):
    """The embedded store of results, statuses, dead letters, schedules and held delays."""

    def __init__(
        self, url: str | None, *, save_limit: int = 0, save_limit_per: str | None = None, **options: Any
    ) -> None:
        super().__init__(url, save_limit=save_limit, save_limit_per=save_limit_per, **options)
        self.db = Database(url, StoreError)
        self._saved_since_prune = 0
        self._touched: set[object] = set()
        self._last_purge_of_expired = 0.0
        self._last_purge_of_slots = 0.0
        self._last_purge_of_stats = 0.0

    def save_many(self, results: Sequence[tuple[ResultMeta, bytes]]) -> None:
        """Insert results or replace saved failures (never a success); prune every ``save_limit // 10``.

        Expired results are deleted here too, at most :data:`EXPIRED_BATCH` once a second;
        reads never return them meanwhile.
        """
        kept = [(m, blob) for m, blob in results if self.keeps(m)]
        rows = [
            (
                m.id,
                m.name,
                m.func,
                m.group,
                int(m.success),
                m.started,
                m.stopped,
                m.attempts,
                m.cluster,
                blob,
                m.expires,
            )
            for m, blob in kept
        ]
        if rows:
            self.db.executemany(SAVE_RESULT, rows)
        if self.save_limit > 0:
            self._prune(kept)
        now = time.time()
        if now - self._last_purge_of_expired >= 1.0:
            self._last_purge_of_expired = now
            self.db.execute(
                "DELETE FROM qframe_results WHERE id IN (SELECT id FROM qframe_results "
                "WHERE expires > 0 AND expires <= ? LIMIT ?)",
                (now, EXPIRED_BATCH),
            )

    def _prune(self, saved: Sequence[tuple[ResultMeta, bytes]]) -> None:
        """Every ``save_limit // 10`` saves, keep the ``save_limit`` most recent successes.

        With ``save_limit_per``, of each value of that field among the results saved since
        the last prune.
        """
        self._saved_since_prune += len(saved)
        column = PER_COLUMN.get(self.save_limit_per or "")
        if column is not None:
            field = SAVE_LIMIT_PER[self.save_limit_per or ""]
            self._touched.update(getattr(meta, field) for meta, _ in saved if meta.success)
        if self._saved_since_prune < max(1, self.save_limit // 10):
            return
        self._saved_since_prune = 0
        if column is None:
            self.db.execute(
                "DELETE FROM qframe_results WHERE id IN (SELECT id FROM qframe_results "
                "WHERE success = 1 ORDER BY stopped DESC LIMIT -1 OFFSET ?)",
                (self.save_limit,),
            )
            return
        touched, self._touched = self._touched, set()
        for value in touched:
            self.db.execute(
                f"DELETE FROM qframe_results WHERE id IN (SELECT id FROM qframe_results "
                f"WHERE success = 1 AND {column} IS ? ORDER BY stopped DESC LIMIT -1 OFFSET ?)",
                (value, self.save_limit),
            )

    def get(self, task_id: str) -> bytes | None:
        """The blob of a result."""
        sql = f"SELECT blob FROM qframe_results WHERE id = ? AND {LIVE}"
        rows = self.db.execute(sql, (task_id, time.time()))
        return rows[0][0] if rows else None

    def wait(self, task_id: str, timeout: float) -> bytes | None:
        """The blob of a result, looked up again whenever another process commits, up to ``timeout`` s.

        The file is looked at every millisecond for the first second, then every 5 ms.
        """
        began = time.monotonic()
        deadline = began + timeout
        while True:
            seen = self.db.data_version()
            blob = self.get(task_id)
            left = deadline - time.monotonic()
            if blob is not None or left <= 0:
                return blob
            self.db.wait_for_commit(seen, left, began)

    def get_by_name(self, name: str) -> bytes | None:
        """The blob of the most recently stopped result named ``name``."""
        rows = self.db.execute(
            f"SELECT blob FROM qframe_results WHERE name = ? AND {LIVE} ORDER BY stopped DESC LIMIT 1",
            (name, time.time()),
        )
        return rows[0][0] if rows else None

    def get_group(self, group: str, failures: bool = True) -> list[bytes]:
        """Blobs of a group, oldest first."""
        extra = "" if failures else " AND success = 1"
        rows = self.db.execute(
            f"SELECT blob FROM qframe_results WHERE grp = ?{extra} AND {LIVE} ORDER BY stopped",
            (group, time.time()),
        )
        return [row[0] for row in rows]

    def count_group(self, group: str, failures: bool = False) -> int:
        """Successes of a group, or its failures."""
        rows = self.db.execute(
            f"SELECT count(*) FROM qframe_results WHERE grp = ? AND success = ? AND {LIVE}",
            (group, int(not failures), time.time()),
        )
        return int(rows[0][0])

    def delete_group(self, group: str, tasks: bool = False) -> int:
        """Ungroup a group's results, or delete them."""
        sql = "DELETE FROM qframe_results" if tasks else "UPDATE qframe_results SET grp = NULL"
        return len(self.db.execute(f"{sql} WHERE grp = ? RETURNING id", (group,)))

    def delete(self, task_id: str) -> bool:
        """Delete one result."""
        return bool(self.db.execute("DELETE FROM qframe_results WHERE id = ? RETURNING id", (task_id,)))

    def tally(self, since: float | None = None) -> Tally:
        """Counts of results stopped since ``since``."""
        successes, failures, busy = self.db.execute(
            "SELECT coalesce(sum(success), 0), coalesce(sum(1 - success), 0), "
            f"coalesce(sum(stopped - started), 0.0) FROM qframe_results WHERE stopped >= ? AND {LIVE}",
            (since if since is not None else float("-inf"), time.time()),
        )[0]
        return Tally(int(successes), int(failures), float(busy))

    def purge(self) -> None:
        """Delete every result."""
        self.db.execute("DELETE FROM qframe_results")

    def set_status(self, key: str, value: bytes, ttl: float) -> None:
        """Save a heartbeat; expired ones are cleared now and then."""
        now = time.time()
        self.db.execute("INSERT OR REPLACE INTO qframe_stats VALUES (?, ?, ?)", (key, value, now + ttl))
        if now - self._last_purge_of_stats > 60:
            self._last_purge_of_stats = now
            self.db.execute("DELETE FROM qframe_stats WHERE expires <= ?", (now,))

    def statuses(self) -> list[bytes]:
        """Live heartbeats."""
        rows = self.db.execute(
            "SELECT value FROM qframe_stats WHERE expires > ? ORDER BY key", (time.time(),)
        )
        return [row[0] for row in rows]

    def quarantine(
        self,
        queue: str,
        message_id: str,
        reason: str,
        payload: bytes,
        attempts: int = 0,
        last_error: str = "",
    ) -> None:
        """Keep a message aside in ``qframe_quarantine``."""
        self.db.execute(
            "INSERT OR REPLACE INTO qframe_quarantine "
            "(queue, message_id, reason, payload, created, attempts, last_error) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (queue, message_id, reason, payload, time.time(), attempts, last_error),
        )

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        """The messages kept aside for ``queue``, oldest first."""
        rows = self.db.execute(
            "SELECT message_id, reason, payload, attempts, last_error, created FROM qframe_quarantine "
            "WHERE queue = ? ORDER BY created",
            (queue,),
        )
        return [DeadLetter(*row) for row in rows]

    def remove_dead_letters(self, queue: str, message_ids: Sequence[str]) -> int:
        """Delete these messages kept aside for ``queue``."""
        with self.db.write() as conn:
            return sum(
                conn.execute(
                    "DELETE FROM qframe_quarantine WHERE queue = ? AND message_id = ?", (queue, message_id)
                ).rowcount
                for message_id in message_ids
            )

    # -- schedules -------------------------------------------------------------------------
    def claim_slot(self, schedule_id: str, slot: int, owner: str, keep: float = DEFAULT_KEEP) -> bool:
        """Insert the slot's marker unless a live one exists: one statement, so one winner."""
        now = time.time()
        rows = self.db.execute(
            "INSERT INTO qframe_slots VALUES (?, ?, ?, ?) ON CONFLICT (schedule, slot) DO UPDATE "
            "SET owner = excluded.owner, expires = excluded.expires WHERE qframe_slots.expires <= ? "
            "RETURNING 1",
            (schedule_id, slot, owner, now + keep, now),
        )
        if now - self._last_purge_of_slots > 60:
            self._last_purge_of_slots = now
            self.db.execute("DELETE FROM qframe_slots WHERE expires <= ?", (now,))
        return bool(rows)

    def slot_owner(self, schedule_id: str, slot: int) -> str | None:
        """The winner of a kept claim."""
        rows = self.db.execute(
            "SELECT owner FROM qframe_slots WHERE schedule = ? AND slot = ? AND expires > ?",
            (schedule_id, slot, time.time()),
        )
        return str(rows[0][0]) if rows else None

    def save_schedule(self, schedule_id: str, data: bytes) -> None:
        """Insert or replace a schedule."""
        self.db.execute("INSERT OR REPLACE INTO qframe_schedules VALUES (?, ?)", (schedule_id, data))

    def schedules(self) -> dict[str, bytes]:
        """Every schedule."""
        return {row[0]: row[1] for row in self.db.execute("SELECT id, data FROM qframe_schedules")}

    def delete_schedule(self, schedule_id: str) -> bool:
        """Delete a schedule."""
        return bool(self.db.execute("DELETE FROM qframe_schedules WHERE id = ? RETURNING id", (schedule_id,)))

    # -- held delays -------------------------------------------------------------------
    def hold(self, queue: str, payload: bytes, due: float) -> str:
        """Insert one held task."""
        sql = "INSERT INTO qframe_held (queue, payload, due) VALUES (?, ?, ?) RETURNING id"
        rows = self.db.execute(sql, (queue, payload, due))
        return str(rows[0][0])

    def claim_held(self, queue: str, until: float, lease: float, limit: int) -> list[HeldTask]:
        """Lease due held tasks with one ``UPDATE ... RETURNING`` (one claimant per entry)."""
        now, token = time.time(), secrets.token_hex(8)
        rows = self.db.execute(
            "UPDATE qframe_held SET claimed_until = ?, token = ? WHERE id IN (SELECT id FROM qframe_held "
            "WHERE queue = ? AND due <= ? AND claimed_until <= ? ORDER BY due, id LIMIT ?) "
            "RETURNING id, payload, due",
            (now + lease, token, queue, until, now, limit),
        )
        return sorted(
            (HeldTask(str(row), token, payload, due) for row, payload, due in rows), key=lambda t: t.due
        )

    def drop_held(self, queue: str, tasks: Sequence[HeldTask]) -> None:
        """Delete held tasks whose claim still holds them."""
        self.db.executemany(
            "DELETE FROM qframe_held WHERE id = ? AND queue = ? AND token = ?",
            [(int(t.id), queue, t.claim) for t in tasks],
        )

    def count_held(self, queue: str) -> int:
        """Held tasks of a queue."""
        return int(self.db.execute("SELECT count(*) FROM qframe_held WHERE queue = ?", (queue,))[0][0])

    def close(self) -> None:
        """Close the connection."""
        self.db.close()
