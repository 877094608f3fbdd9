// Types for @lastseen-xmpp/lastseen: the lastseen presence machine as a
// WebAssembly module (see wasm/ABI.md in the repository).

/** The ABI version this binding speaks. */
export const ABI_VERSION: 3;

/** A time: ns since the Unix epoch (bigint), ms since the epoch (number, as Date.now()) or a Date. */
export type Time = bigint | number | Date;
/** A duration: ns (bigint) or ms (number). */
export type Duration = bigint | number;
/** A JID or stanza: text, or its UTF-8 bytes. */
export type Text = string | Uint8Array;
export type Subscription = 'none' | 'to' | 'from' | 'both';

export const Kind: Readonly<{ REPLY: 'reply'; PROBE: 'probe'; ERROR: 'error'; IQ_REPLY: 'iq-reply'; QUERY: 'query' }>;
export type OutputKind = 'reply' | 'probe' | 'error' | 'iq-reply' | 'query';

/** A stanza to send. */
export interface Output {
  /**
   * Where it goes is always `to`; the kind says what it is. reply: a probe
   * answer; probe: a client probe to route onwards; error: a presence error
   * for the probing session; iq-reply: a Last Activity (XEP-0012) result or
   * error; query: a client's Last Activity query to route onwards.
   * reply, probe and error are presence stanzas, iq-reply and query iq.
   */
  kind: OutputKind;
  /** The normalised JID to deliver it to. */
  to: string;
  /** The complete stanza, without a namespace declaration. */
  stanza: string;
  /**
   * The stanza's exact bytes (not enumerated). A view into one copy of the
   * call's results, shared with the call's other outputs: read it through
   * the view (or `slice()` it), not through `bytes.buffer`, which holds more.
   */
  readonly bytes: Uint8Array;
}

export type ErrorCode =
  | 'BAD_INPUT' | 'MALFORMED' | 'RESTRICTED' | 'TOO_LARGE' | 'TOO_COMPLEX'
  | 'NOT_PRESENCE' | 'UNKNOWN_TYPE' | 'INVALID_JID' | 'NO_FROM' | 'NO_TO'
  | 'NOT_LOCAL' | 'SESSION' | 'NOT_DOMAIN' | 'NO_FACT_STORE' | 'CONFIG'
  | 'TOO_MANY_ENTITIES' | 'TOO_MANY_RESOURCES' | 'CORRUPT'
  /** The authorizer's callback threw (ABI version 3): `cause` is what it threw. */
  | 'HOST'
  | 'NO_MACHINE' | 'PANIC' | 'OTHER'
  /** A callback of the authorizer called into its own machine (its error is the cause of a HOST error). */
  | 'REENTRY'
  | 'TRAP' | 'ABI' | 'RELEASED' | `CODE_${number}`
  /** From the durable store (durable.js): another process holds the directory; an earlier write failed. */
  | 'LOCKED' | 'FAILED';

export class LastseenError extends Error {
  name: 'LastseenError';
  /** Why (wasm/ABI.md §6); TRAP and PANIC mean the machine restarted empty. */
  code: ErrorCode;
  /** The event refused: client, server, close, up, down, roster, block, hide, limit, config. */
  event: string;
  /** True when the input was refused: nothing was emitted and nothing changed. */
  badInput: boolean;
  /** The reason alone, without the "lastseen: bad … input:" prefix. */
  reason: string;
  /** Where an XML error is ({offset, msg}) or which JID part is wrong ({input, part, reason}). */
  detail: { offset: number; msg: string } | { input: string; part: string; reason: string } | null;
}

export interface MachineOptions {
  /** The domains whose users the machine tracks; at least one. */
  served: string[];
  /** Client probes per session: burst, refilled at burst per `per`. Default 10 per minute. */
  probeLimit?: { burst: number; per: Duration };
  /** Cap on tracked users and hosted domains (0: none). */
  maxEntities?: number;
  /** Cap on one user's available resources (0: 64). */
  maxResources?: number;
  /** Longest stanza in bytes (0: 65536). */
  maxBytes?: number;
  /** Deepest element nesting (0: 32). */
  maxDepth?: number;
  /** Most attributes on one element (0: 64). */
  maxAttrs?: number;
  /**
   * Journal every durable change: client, server, close, up and down then
   * return their journal records through records() (and batch), for a
   * store such as openDurable. Default false.
   */
  journal?: boolean;
  /**
   * Facts from the host (ABI version 3): the machine asks these callbacks
   * when a probe, a Last Activity query, up or down needs a fact, instead
   * of keeping the facts setRoster, setBlock and setHidden give (which then
   * throw NO_FACT_STORE). Answer from your own roster and privacy storage
   * at that moment. A callback that throws makes that call throw
   * LastseenError HOST (its `cause` is what was thrown); the machine
   * emits nothing for it and goes on. A callback must not call into its
   * machine (that fails with REENTRY).
   */
  authorizer?: Authorizer;
  /**
   * The module: its bytes or a compiled module (compileModule makes one from
   * a URL); in Node.js also a path. Default: the package's lastseen.wasm
   * (in a browser, the one served beside index.js).
   */
  wasm?: string | URL | Uint8Array | ArrayBuffer | WebAssembly.Module;
}

/**
 * What the machine asks the host (ABI.md §5, "Facts from the host"). JIDs
 * are normalised (RFC 7622) strings; compare them as such.
 */
export interface Authorizer {
  /**
   * A probe or Last Activity query from prober (any JID) to the local user
   * owner (bare): does owner block prober (XEP-0191: an item matches the
   * full JID, the bare JID or the domain), what subscription owner's
   * roster holds for prober's bare JID, and did owner opt out of last-seen.
   */
  probeFacts(owner: string, prober: string): { blocked: boolean; sub: Subscription; hidden: boolean };
  /** Does owner (bare) block jid? Asked for a client's probe or query, and for each subscriber of up and down. */
  blocks(owner: string, jid: string): boolean;
  /**
   * The contacts of the served domain or component owner with subscription
   * from or both, in any order: the machine drops those owner blocks and
   * sorts them. Without it, up and down throw BAD_INPUT, as the native
   * library does with an Authorizer that cannot list subscribers.
   */
  subscribers?(owner: string): Iterable<string>;
}

/** An in-memory Authorizer over normalised JIDs, like the Go library's core.MemoryAuth: for tests and small hosts. */
export class FactTable implements Authorizer {
  setRoster(owner: string, contact: string, sub: Subscription): void;
  setBlock(owner: string, jid: string, blocked?: boolean): void;
  setHidden(owner: string, hidden?: boolean): void;
  probeFacts(owner: string, prober: string): { blocked: boolean; sub: Subscription; hidden: boolean };
  blocks(owner: string, jid: string): boolean;
  subscribers(owner: string): Iterable<string>;
}

export type Event =
  | { type: 'client'; now: Time; session: Text; stanza: Text }
  | { type: 'server'; now: Time; stanza: Text }
  | { type: 'close'; now: Time; session: Text }
  | { type: 'up'; now: Time; jid: Text }
  | { type: 'down'; now: Time; jid: Text }
  | { type: 'roster'; owner: Text; contact: Text; sub: Subscription }
  | { type: 'block'; owner: Text; jid: Text; blocked?: boolean }
  | { type: 'hide'; owner: Text; hidden?: boolean }
  | { type: 'limit'; now: Time; burst: number; per: Duration }
  | { type: 'state' }
  | { type: 'snapshot' }
  | { type: 'restore'; snapshot: Uint8Array }
  | { type: 'restarted' }
  | { type: 'apply'; record: Uint8Array };

/** With `journal`, client, server, close, up and down results also carry `records`. */
export type BatchResult = { outputs: Output[]; records?: Uint8Array[] } | { state: Uint8Array } | { error: LastseenError };

/** One lastseen machine in its own WebAssembly instance. Methods throw LastseenError. */
export class Machine {
  constructor(options: MachineOptions);
  /** A presence stanza or a Last Activity query (iq get, jabber:iq:last) from a local session. */
  client(now: Time, session: Text, stanza: Text): Output[];
  /** A presence stanza or a Last Activity query from another server or a local component. */
  server(now: Time, stanza: Text): Output[];
  close(now: Time, session: Text): Output[];
  /** A served domain or hosted component came online: its presence for each subscriber (RULES S3), kind 'reply'. */
  up(now: Time, jid: Text): Output[];
  /** A hosted component went offline: its unavailable presence for each subscriber, kind 'reply'. */
  down(now: Time, jid: Text): Output[];
  setRoster(owner: Text, contact: Text, sub: Subscription): void;
  setBlock(owner: Text, jid: Text, blocked?: boolean): void;
  setHidden(owner: Text, hidden?: boolean): void;
  setProbeLimit(now: Time, limit: { burst: number; per: Duration }): void;
  /** The deterministic encoding of everything the machine tracks. */
  state(): Uint8Array;
  /**
   * The durable state: versioned, checksummed bytes any engine can restore.
   * Like Output.bytes (and state()), a view: mind its byteOffset if you use
   * its buffer.
   */
  snapshot(): Uint8Array;
  /** Loads a snapshot; a damaged one throws code CORRUPT and changes nothing. */
  restore(snapshot: Uint8Array): void;
  /** The restart rule after restore; returns how many resources it took offline. */
  restarted(): number;
  /**
   * With `journal`: the journal records of the last client, server, close,
   * up or down call, the native library's bytes; write them (fsynced) in
   * order before sending the call's outputs. Empty if it changed nothing.
   */
  records(): Uint8Array[];
  /** Replays one journal record from any engine; a damaged one throws CORRUPT and changes nothing. */
  applyRecord(record: Uint8Array): void;
  batch(events: Event[]): BatchResult[];
  /** A fresh, empty machine in the same instance; options replace the current ones. */
  reset(options?: Omit<MachineOptions, 'wasm'>): void;
  dispose(): void;
}

/** The path of the lastseen.wasm loaded by default (Node.js only). */
export function wasmPath(): string;

/**
 * Compiles lastseen.wasm without blocking, for MachineOptions.wasm: from a
 * URL (fetched; in Node.js a path or file: URL is read), a fetch Response or
 * the bytes. With no source: the package's own lastseen.wasm.
 */
export function compileModule(source?: string | URL | Response | Uint8Array | ArrayBuffer | WebAssembly.Module): Promise<WebAssembly.Module>;

/** Options of openDurable (from '@lastseen-xmpp/lastseen/durable', Node.js only). */
export interface DurableOptions extends Omit<MachineOptions, 'journal'> {
  /** Journal records between two compactions (default 10000). */
  compactEvery?: number;
  /** Journal bytes past which the store compacts (default 64 MiB). */
  compactBytes?: number;
}

/** What openDurable found on disk. */
export interface Recovery {
  /** Generation of the snapshot loaded (0: none). */
  generation: number;
  /** Journal records applied on top of it. */
  records: number;
  /** Bytes of a torn journal tail that were dropped. */
  tornBytes: number;
  /** Resources the restart rule took offline. */
  tookOffline: number;
}
