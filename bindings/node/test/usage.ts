// Type-checked, not run: `npm run typecheck` (and .ci/run) compiles this
// with tsc --strict against index.d.ts, so the types cover what a
// TypeScript user writes.
import { Machine, LastseenError, Kind, compileModule, wasmPath, ABI_VERSION } from '@lastseen-xmpp/lastseen';
import type { ErrorCode, Output, OutputKind, BatchResult, MachineOptions } from '@lastseen-xmpp/lastseen';

const options: MachineOptions = { served: ['montague.com'], probeLimit: { burst: 5, per: 60_000 } };
const m = new Machine(options);
m.setRoster('romeo@montague.com', 'juliet@capulet.com', 'both');
m.setBlock('romeo@montague.com', 'tybalt@capulet.com');
m.setHidden('benvolio@montague.com', false);
m.setProbeLimit(Date.now(), { burst: 3, per: 10_000n * 1_000_000n });

const outs: Output[] = m.server(Date.now(), "<presence from='juliet@capulet.com/c' to='romeo@montague.com' type='probe'/>");
for (const o of outs) {
  const kind: OutputKind = o.kind;
  // Presence goes out as presence, Last Activity answers and queries as iq.
  const isIQ = kind === Kind.IQ_REPLY || kind === Kind.QUERY;
  const bytes: Uint8Array = o.bytes;
  console.log(kind === Kind.REPLY, isIQ, o.to, o.stanza, bytes.length);
}

try {
  m.restore(new Uint8Array([1, 2, 3]));
} catch (e) {
  if (e instanceof LastseenError) {
    const code: ErrorCode = e.code;
    // Every code of wasm/ABI.md §6 is a member of ErrorCode.
    if (e.code === 'CORRUPT' || e.code === 'BAD_INPUT' || e.code === 'TRAP') console.log(code, e.badInput, e.event, e.detail);
  }
}

const results: BatchResult[] = m.batch([
  { type: 'client', now: new Date(), session: 'romeo@montague.com/balcony', stanza: '<presence/>' },
  { type: 'state' },
]);
for (const r of results) {
  if ('error' in r) console.log(r.error.code);
  else if ('outputs' in r) console.log(r.outputs.length);
  else console.log(r.state.byteLength);
}

const snap: Uint8Array = m.snapshot();
m.restore(snap);
const offline: number = m.restarted();
m.reset({ served: ['capulet.com'] });
m.dispose();

// A browser host compiles the module from a URL and passes it in.
async function inBrowser(url: URL): Promise<Machine> {
  return new Machine({ served: ['montague.com'], wasm: await compileModule(url) });
}
void inBrowser;
console.log(offline, ABI_VERSION, wasmPath());

// The durable store (Node.js only) has types of its own.
import { openDurable } from '@lastseen-xmpp/lastseen/durable';
import type { Recovery } from '@lastseen-xmpp/lastseen';
const store = openDurable('/tmp/lastseen-usage', { served: ['montague.com'], compactEvery: 1000 });
const recovered: Recovery = store.recovery;
const sent: Output[] = store.client(Date.now(), 'romeo@montague.com/balcony', '<presence/>');
console.log(recovered.records, sent.length, store.machine.records().length);
store.shutdown();
const jm = new Machine({ served: ['montague.com'], journal: true });
jm.client(Date.now(), 'romeo@montague.com/balcony', '<presence/>');
for (const r of jm.records()) m.applyRecord(r);
const again = openDurable('/tmp/lastseen-usage', { served: ['montague.com'] });
const rs: BatchResult[] = again.batch([{ type: 'client', now: Date.now(), session: 'romeo@montague.com/balcony', stanza: '<presence/>' }]);
console.log(rs.length);
again.shutdown();
