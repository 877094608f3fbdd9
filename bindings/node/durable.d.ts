// Types for @lastseen-xmpp/lastseen/durable: a Machine whose durable state
// lives in a directory (Node.js only), in the Go store's format.
import type { Machine, DurableOptions, Recovery } from './index.js';

/** Journal records between two compactions, by default. */
export const DEFAULT_COMPACT_EVERY: number;
/** Journal bytes past which the store compacts, by default. */
export const DEFAULT_COMPACT_BYTES: number;

/** The CRC-32C (Castagnoli) of b, as the store's files use. */
export function crc32c(b: Uint8Array): number;

/**
 * Opens (creating it if needed) the store in dir: loads the snapshot,
 * replays the journal, drops a torn tail, applies the restart rule and
 * compacts. Throws LastseenError: LOCKED (another process has it), CORRUPT
 * (damage a crash cannot cause; nothing loaded).
 */
export function openDurable(dir: string, options: DurableOptions): DurableMachine;

/**
 * The Machine methods a DurableMachine has, with the same signatures:
 * client, server, close (the session ended; to close the store, see
 * shutdown), up and down are journaled, the others pass through. batch
 * journals the whole batch with one fsync (group commit) and throws a
 * TypeError for restore, apply and restarted events.
 */
type Journaled = 'client' | 'server' | 'close' | 'up' | 'down' | 'batch';
type PassedThrough = 'setRoster' | 'setBlock' | 'setHidden' | 'setProbeLimit' | 'state';
export interface DurableMachine extends Pick<Machine, Journaled | PassedThrough> {}

/** A Machine whose every durable change is journaled and fsynced before its outputs are returned. */
export class DurableMachine {
  constructor(dir: string, options: DurableOptions);
  /** What opening found on disk. */
  readonly recovery: Recovery;
  /** The machine, for reading and for facts; its input methods bypass the journal. */
  readonly machine: Machine;
  /** Writes a snapshot of the whole state and starts a new, empty journal. */
  compact(): void;
  /** Closes the files and releases the lock; later calls throw. */
  shutdown(): void;
}
