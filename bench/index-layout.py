#!/usr/bin/env python3
"""What the SQLite store's session and user indexes cost per event, against a
chunked layout, on SQLite alone (no service), with ws-publish's key spread.

  python3 bench/index-layout.py plain 1000000
  python3 bench/index-layout.py chunked 1000000

Appends N events in transactions of 1,000 (sessions k % 1,000, users
k % 5,000, 15 types, ids in time order: `ws-publish`'s shape) to a fresh
WAL database in /tmp, checkpointing (RESTART, which copies and fsyncs)
every 20 transactions, and prints for the second half of the run: WAL
frames per event, the insert rate, and the checkpoints' mean and max;
then the time to read a session's or a user's newest 100 events.

`plain` has the service's indexes (schema.rs): (session_id, seq) and
(user_id, seq), into which each event of a transaction goes at a leaf of
its own. `chunked` keys those two by (seq >> 14, value, seq): within the
16,384 newest seqs, entries sort by value, so a transaction's events
share the few leaves of the newest chunk. A side table per index lists
the chunks that hold each value (a row per value and chunk, written once
per chunk), and a query walks those chunks newest first, stopping at its
limit. The service's schema 8 (adapters/sqlite/src/chunks.rs) is the
chunked layout; this script keeps the comparison that chose it (see
bench/README.md, "What the WAL's volume is made of").
"""
import json
import os
import sqlite3
import sys
import time

CHUNK_BITS = 14
BATCH = 1_000

mode, n = sys.argv[1], int(sys.argv[2])
assert mode in ("plain", "chunked"), "mode: plain or chunked"
path = f"/tmp/index-layout-{mode}.db"


def remove_db():
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


remove_db()
c = sqlite3.connect(path, isolation_level=None)
for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "wal_autocheckpoint = 0", "cache_size = -65536"):
    c.execute("PRAGMA " + pragma)
c.executescript("""
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    source     TEXT NOT NULL,
    session_id TEXT,
    user_id    TEXT,
    payload    TEXT NOT NULL,
    timestamp  TEXT NOT NULL);
CREATE INDEX ix_events_type_seq  ON events (event_type, seq);
CREATE INDEX ix_events_timestamp ON events (timestamp);
""")
if mode == "plain":
    c.executescript("""
    CREATE INDEX ix_events_session_seq ON events (session_id, seq);
    CREATE INDEX ix_events_user_seq    ON events (user_id, seq);
    """)
else:
    c.executescript(f"""
    CREATE INDEX ix_events_session_chunk ON events (seq >> {CHUNK_BITS}, session_id, seq);
    CREATE INDEX ix_events_user_chunk    ON events (seq >> {CHUNK_BITS}, user_id, seq);
    CREATE TABLE session_chunks (session_id TEXT, chunk INTEGER, PRIMARY KEY (session_id, chunk)) WITHOUT ROWID;
    CREATE TABLE user_chunks    (user_id TEXT,    chunk INTEGER, PRIMARY KEY (user_id, chunk))    WITHOUT ROWID;
    """)

TYPES = [f"type_{i}" for i in range(15)]
PAYLOAD = json.dumps({"quiz_id": "quiz-algebra-7", "question_id": "q-12", "answer": "B",
                      "correct": True, "time_ms": 5234, "attempt": 1})
frames = inserting = checkpointing = slowest = 0.0
checkpoints = 0
k = 0
started = time.time()
while k < n:
    rows = []
    for _ in range(BATCH):
        stamp = f"2026-12-05T{(k // 3_600_000) % 24:02d}:{(k // 60_000) % 60:02d}:{(k // 1_000) % 60:02d}.{k % 1_000:03d}000Z"
        rows.append((f"evt_0190{k:028x}", TYPES[k % 15], "bench", f"s{k % 1_000}", f"u{k % 5_000}", PAYLOAD, stamp))
        k += 1
    t = time.time()
    c.execute("BEGIN")
    before = c.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    c.executemany("INSERT INTO events (id, event_type, source, session_id, user_id, payload, timestamp)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    if mode == "chunked":
        chunk = (before + 1) >> CHUNK_BITS
        last = (before + len(rows)) >> CHUNK_BITS
        for table, column in (("session_chunks", 4), ("user_chunks", 5)):
            pairs = {(row[column - 1], chunk) for row in rows} | {(row[column - 1], last) for row in rows}
            c.executemany(f"INSERT OR IGNORE INTO {table} VALUES (?, ?)", sorted(pairs))
    c.execute("COMMIT")
    took = time.time() - t
    if (k // BATCH) % 20 == 0:
        t = time.time()
        _, wal_frames, _ = c.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        copy = time.time() - t
        if k > n // 2:
            frames += wal_frames
            checkpointing += copy
            checkpoints += 1
            slowest = max(slowest, copy)
    if k > n // 2:
        inserting += took

half = n - n // 2
print(f"{mode}, {n:,} events ({os.path.getsize(path) >> 20} MB, {time.time() - started:.0f} s); second half: "
      f"{frames / half:.2f} WAL frames per event, {half / inserting:,.0f} events/s inserted, "
      f"checkpoint of 20 transactions mean {1000 * checkpointing / max(checkpoints, 1):.1f} ms, "
      f"max {1000 * slowest:.1f} ms")


def newest(column, value, limit=100):
    if mode == "plain":
        return c.execute(f"SELECT * FROM events WHERE {column} = ? ORDER BY seq DESC LIMIT ?",
                         (value, limit)).fetchall()
    table = "session_chunks" if column == "session_id" else "user_chunks"
    found = []
    for (chunk,) in c.execute(f"SELECT chunk FROM {table} WHERE {column} = ? ORDER BY chunk DESC", (value,)).fetchall():
        found += c.execute(f"SELECT * FROM events WHERE seq >> {CHUNK_BITS} = ? AND {column} = ?"
                           " ORDER BY seq DESC LIMIT ?", (chunk, value, limit - len(found))).fetchall()
        if len(found) >= limit:
            break
    return found


for label, column, value, spread in (("a session's newest 100", "session_id", "s{}", 1_000),
                                     ("a user's newest 100", "user_id", "u{}", 5_000),
                                     ("an unknown session", "session_id", "none-{}", 1_000)):
    times, rows = [], 0
    for i in range(200):
        t = time.time()
        rows = len(newest(column, value.format(i * 7 % spread)))
        times.append(time.time() - t)
    times.sort()
    print(f"  {label}: p50 {1000 * times[100]:.2f} ms, max {1000 * times[-1]:.2f} ms ({rows} rows)")
c.close()
remove_db()
