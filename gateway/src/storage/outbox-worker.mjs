// The outbox's commit thread: runs each group commit (INSERT + fsync) off the event loop, so the
// ingest path never waits for the disk. Plain JavaScript on purpose: a worker thread starts its
// own module loader, and this file must run unchanged from the sources (tests) and from dist/.
// Messages in:  { type: 'commit', seq, lines, bytes, body, stateBody, deletes, snapshot }
//   (snapshot: stateBody holds every state entry and replaces the snapshot row)
//   (body: the lines as UTF-8 bytes in a transferred buffer, null without lines)
//   (deletes: row ranges InfluxDB confirmed, [first, last, first, last, ...])
// Messages out: { type: 'committed', seq, buf } | { type: 'failed', seq, error, buf }
//   (buf: the body's buffer, transferred back for the next commit)
// It also checkpoints other databases' WALs (alarms.db, ADR 0082), so they need no thread of their own:
//   in:  { type: 'checkpoint-start', file, intervalMs } | { type: 'checkpoint-stop', file }
//   out: { type: 'checkpoint-error', file, error } | { type: 'checkpoint-stopped', file }
import { clearInterval, setInterval } from 'node:timers';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database(workerData.file);
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${workerData.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
db.pragma('busy_timeout = 5000');
const insert = db.prepare('INSERT INTO chunk (lines, bytes, body) VALUES (?, ?, ?)');
const insertState = db.prepare('INSERT INTO state_log (body) VALUES (?)');
const deleteRange = db.prepare('DELETE FROM chunk WHERE id BETWEEN ? AND ?');
const putSnapshot = db.prepare(workerData.snapshotSql);
const foldLog = db.prepare(workerData.foldSql);
const tx = db.transaction((lines, bytes, body, stateBody, deletes, snapshot) => {
  if (lines) insert.run(lines, bytes, body);
  if (snapshot) {
    putSnapshot.run(stateBody);
    foldLog.run();
  } else if (stateBody) insertState.run(stateBody);
  for (let i = 0; i < deletes.length; i += 2) deleteRange.run(deletes[i], deletes[i + 1]);
});

/** Databases checkpointed here: file → { db, timer }. */
const checkpoints = new Map();

function startCheckpoints(file, intervalMs) {
  let cdb;
  try {
    cdb = new Database(file);
    cdb.pragma('busy_timeout = 5000');
  } catch (err) {
    parentPort.postMessage({
      type: 'checkpoint-error',
      file,
      error: err instanceof Error ? err.message : String(err),
    });
    return;
  }
  const timer = setInterval(() => {
    try {
      // PASSIVE: never waits for the writer; what it cannot copy now it copies next time.
      cdb.pragma('wal_checkpoint(PASSIVE)');
    } catch (err) {
      parentPort.postMessage({
        type: 'checkpoint-error',
        file,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }, intervalMs);
  checkpoints.set(file, { db: cdb, timer });
}

function stopCheckpoints(file) {
  const c = checkpoints.get(file);
  if (!c) return;
  checkpoints.delete(file);
  clearInterval(c.timer);
  c.db.close();
}

parentPort.on('message', (m) => {
  if (m.type === 'checkpoint-start') {
    startCheckpoints(m.file, m.intervalMs);
    return;
  }
  if (m.type === 'checkpoint-stop') {
    stopCheckpoints(m.file);
    parentPort.postMessage({ type: 'checkpoint-stopped', file: m.file });
    return;
  }
  if (m.type === 'close') {
    for (const file of [...checkpoints.keys()]) stopCheckpoints(file);
    db.close();
    parentPort.postMessage({ type: 'closed' });
    return;
  }
  const buf = m.body ? m.body.buffer : undefined;
  const back = buf ? [buf] : [];
  try {
    tx(m.lines, m.bytes, m.body, m.stateBody, m.deletes ?? [], m.snapshot === true);
    parentPort.postMessage({ type: 'committed', seq: m.seq, buf }, back);
  } catch (err) {
    parentPort.postMessage(
      { type: 'failed', seq: m.seq, error: err instanceof Error ? err.message : String(err), buf },
      back,
    );
  }
});
