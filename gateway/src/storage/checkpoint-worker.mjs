// Checkpoints one SQLite database's write-ahead log into the database file off the event loop.
// The gateway's own connection commits with synchronous=NORMAL and wal_autocheckpoint=0: its
// commits append to the WAL without an fsync, and the checkpoint (which fsyncs the WAL and then the
// database) runs here, on a connection of its own. Plain JavaScript, like outbox-worker.mjs.
// workerData: { file, intervalMs }. Messages in: 'close'. Messages out: { type: 'error', error }.
import { clearInterval, setInterval } from 'node:timers';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
let closing = false;
const timer = setInterval(() => {
  if (closing) return;
  try {
    // PASSIVE: never waits for the writer; what it cannot copy now it copies next time.
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort.postMessage({ type: 'error', error: err instanceof Error ? err.message : String(err) });
  }
}, workerData.intervalMs);

parentPort.on('message', (m) => {
  if (m !== 'close') return;
  closing = true;
  clearInterval(timer);
  db.close();
  parentPort.postMessage({ type: 'closed' });
});
