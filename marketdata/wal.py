"""The ingestor's local files: accepted quote batches Redis has not confirmed, and database writes not yet made.

**Write-ahead file** (WriteAheadLog). The ingestor writes here only while Redis is unreachable (a failed
flush): every batch not yet in the file is appended and the file is fsynced before the batch counts as
accepted. On start the file is read back and its batches are sent again, under the producer id and batch
numbers they were first given, so the aggregator drops any copy that had landed after all (a batch number
at or below the producer's last one is a duplicate). Once Redis has confirmed every batch, the file is emptied.

**Database-write journal** (DbWriteJournal, a sibling file ``<write-ahead file>.db-writes``). Every feed
status change and rejection count the ingestor is to write to the database is appended here before the
write is tried, and marked done (or the file emptied) once the database took it; on start the writes not
marked done are queued again. So a PostgreSQL outage, and a kill of the ingestor during it, lose none of
them. Replaying is exactly once: the table of status changes refuses a second copy of one change, and a
rejection write carries its process's producer id, whose mark in the database (IngestWriteMark, moved in
the same transaction as the counts) says which of its writes are in already. So a write that had
committed when the process was killed, in the moment before the journal heard of it, is not added again.

Format of both: records of a 4-byte big-endian length, a 4-byte CRC-32 and a msgpack array. A record cut short
by a crash (or failing its CRC) ends the file: it and anything after it are cut off, since what they held was
never confirmed as written. One process per file: an exclusive `flock`.
"""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]

WalBatch = tuple[str, int, int, list[Any]]  # producer, shard, batch no, quotes (wire tuples)
# A database write: sequence number, kind ("s": status change, "r": rejection counts) and its arguments:
# "s": [broker, status, at µs, detail]; "r": [[[broker, reason, n], ...], at µs, writer (producer id; absent in
# journals written before it was added)].
DbWrite = tuple[int, str, list[Any]]
_HEADER = struct.Struct(">II")


class WalLockedError(RuntimeError):
    """Another process holds this write-ahead file."""


def _parse(data: bytes) -> tuple[list[Any], int]:
    """The whole records at the start of data, and where they end."""
    out: list[Any] = []
    pos = 0
    while pos + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, pos)
        body = data[pos + _HEADER.size : pos + _HEADER.size + length]
        if len(body) < length or zlib.crc32(body) != crc:
            break
        out.append(msgpack.unpackb(body, raw=False, use_list=True))
        pos += _HEADER.size + length
    return out, pos


class RecordFile:
    """An append-only file of checksummed records, held by one process (flock)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise WalLockedError(f"{self.path} is in use by another ingestor; give each its own file") from None
        self.size = os.fstat(self._fd).st_size

    def read_records(self) -> list[Any]:
        """Every whole record, in write order; a torn tail is cut off."""
        with open(self.path, "rb") as f:
            data = f.read()
        records, end = _parse(data)
        if end < len(data):
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        self.size = end
        return records

    def append_records(self, records: list[Any], *, sync: bool = True) -> None:
        """Append; with sync, fsync too: then the records survive a crash of the machine, not only of the process."""
        chunks: list[bytes] = []
        for record in records:
            body = msgpack.packb(record, use_bin_type=True)
            chunks += (_HEADER.pack(len(body), zlib.crc32(body)), body)
        data = b"".join(chunks)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        if sync:
            os.fsync(self._fd)
        self.size += len(data)

    def sync(self) -> None:
        os.fsync(self._fd)

    def clear(self) -> None:
        os.ftruncate(self._fd, 0)
        self.size = 0

    def close(self) -> None:
        os.close(self._fd)


class WriteAheadLog(RecordFile):
    def read(self) -> list[WalBatch]:
        """Every whole batch, in write order; a torn tail is cut off."""
        return [(str(p), int(s), int(n), quotes) for p, s, n, quotes in self.read_records()]

    def append(self, batches: list[WalBatch]) -> None:
        """Append and fsync: when this returns, the batches survive a crash of this process or the machine."""
        self.append_records([list(b) for b in batches])

    def clear(self) -> None:
        """Every batch is confirmed by Redis: empty the file (replaying it again would be harmless)."""
        super().clear()


def db_journal_path(wal_path: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(wal_path)}.db-writes")


class DbWriteJournal(RecordFile):
    """Database writes an ingestor is to make: ["w", seq, kind, args] records, and ["d", seq] (done up to seq)."""

    def read(self) -> list[DbWrite]:
        """The writes not marked done, in order; a torn tail is cut off."""
        return pending_db_writes(self.read_records())

    def append(self, writes: list[DbWrite], *, sync: bool) -> None:
        self.append_records([["w", seq, kind, args] for seq, kind, args in writes], sync=sync)

    def done(self, seq: int) -> None:
        """Every write up to seq is in the database (not synced: a lost mark only means a write made again)."""
        self.append_records([["d", seq]], sync=False)


def pending_db_writes(records: list[Any]) -> list[DbWrite]:
    done = max((int(r[1]) for r in records if r[0] == "d"), default=0)
    return [(int(r[1]), str(r[2]), list(r[3])) for r in records if r[0] == "w" and int(r[1]) > done]


def db_journal_peek(path: str | os.PathLike[str]) -> list[DbWrite]:
    """The pending writes of a journal another process may hold (read only; for tests and inspection)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return pending_db_writes(_parse(data)[0])
