"""The ingestor's write-ahead file: accepted quote batches that Redis has not confirmed, on local disk.

The ingestor writes here only while Redis is unreachable (a failed flush): every batch not yet in the file is
appended and the file is fsynced before the batch counts as accepted. On start the file is read back and its
batches are sent again, under the producer id and batch numbers they were first given, so the aggregator drops
any copy that had landed after all (a batch number at or below the producer's last one is a duplicate). Once
Redis has confirmed every batch, the file is emptied.

Format: records of a 4-byte big-endian length, a 4-byte CRC-32 and a msgpack array [producer, shard, batch no,
quotes]. A record cut short by a crash (or failing its CRC) ends the file: it and anything after it are cut
off, since their batches were never confirmed as written. One process per file: an exclusive `flock`.
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
_HEADER = struct.Struct(">II")


class WalLockedError(RuntimeError):
    """Another process holds this write-ahead file."""


class WriteAheadLog:
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

    def read(self) -> list[WalBatch]:
        """Every whole record, in write order; a torn tail is cut off."""
        with open(self.path, "rb") as f:
            data = f.read()
        out: list[WalBatch] = []
        pos = 0
        while pos + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, pos)
            body = data[pos + _HEADER.size : pos + _HEADER.size + length]
            if len(body) < length or zlib.crc32(body) != crc:
                break
            producer, shard, batch_no, quotes = msgpack.unpackb(body, raw=False, use_list=True)
            out.append((str(producer), int(shard), int(batch_no), quotes))
            pos += _HEADER.size + length
        if pos < len(data):
            os.ftruncate(self._fd, pos)
            os.fsync(self._fd)
        self.size = pos
        return out

    def append(self, batches: list[WalBatch]) -> None:
        """Append and fsync: when this returns, the batches survive a crash of this process or the machine."""
        chunks: list[bytes] = []
        for batch in batches:
            body = msgpack.packb(list(batch), use_bin_type=True)
            chunks += (_HEADER.pack(len(body), zlib.crc32(body)), body)
        data = b"".join(chunks)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)
        self.size += len(data)

    def clear(self) -> None:
        """Every batch is confirmed by Redis: empty the file (replaying it again would be harmless)."""
        os.ftruncate(self._fd, 0)
        self.size = 0

    def close(self) -> None:
        os.close(self._fd)
