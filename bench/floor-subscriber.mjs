// The ingest benchmark's floor, in a process of its own (as the gateway is): a bare mqtt.js
// subscriber on the persistent session `bench-floor` that parses each payload as JSON, acks on
// receipt and counts. Prints {"seconds": ...} from the first message to the Nth.
//   node bench/floor-subscriber.mjs <broker url> <N>
import { performance } from 'node:perf_hooks';
import mqtt from 'mqtt';

const [url, n] = [process.argv[2], Number(process.argv[3])];
let got = 0;
let t0 = 0;
const c = mqtt.connect(url, { clientId: 'bench-floor', clean: false });
c.on('message', (_t, p) => {
  if (got === 0) t0 = performance.now();
  JSON.parse(p.toString());
  if (++got === n) {
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(JSON.stringify({ seconds }) + '\n', () => process.exit(0));
  }
});
c.on('error', (err) => {
  if (got >= n) return; // the measurement is taken; the connection is being dropped
  process.stderr.write(`floor: ${String(err)} after ${got} messages\n`);
  process.exit(1);
});
