// A server instance in a process of its own, for segment-uploads.test.ts to kill with SIGKILL mid-request: it writes
// the first SEND_BYTES of the stream in WIRE_FILE to upload UPLOAD_ID as one request that never ends, says so once
// the store has taken every byte of it, and waits to be killed.
import fs from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { s3ObjectStore } from '../../server/archive/object-store.ts';
import { archiveUploads } from './segment-fixture.ts';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`segment-writer needs ${name}`);
  return v;
};
const objects = s3ObjectStore({
  endpoint: env('S3_ENDPOINT'), bucket: env('S3_BUCKET'), prefix: 'archive', accessKeyId: env('S3_KEY'), secretAccessKey: env('S3_SECRET'),
});
const id = env('UPLOAD_ID');
const send = Number(env('SEND_BYTES'));
const uploads = archiveUploads(objects, env('HOLDER'), {
  leaseMs: Number(env('LEASE_MS')), renewEveryMs: Number(env('LEASE_MS')) / 3,
  limits: { segmentBytes: Number(env('SEGMENT_BYTES')), segmentMs: 600_000 },
});
const wire = await fs.readFile(env('WIRE_FILE'));
const request = new PassThrough();
const writing = uploads.write(id, request, 0);
writing.catch((err: unknown) => {
  process.stderr.write(`segment-writer: ${String(err)}\n`);
  process.exit(1);
});
request.write(wire.subarray(0, send));
while (uploads.arrived(id) < send) await sleep(5);
process.stdout.write('sent\n');
setInterval(() => {}, 1 << 30);
