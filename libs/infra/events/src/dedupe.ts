/**
 * Remembers recently published message ids for the in-process bus, the way JetStream's duplicate
 * window does: an id is forgotten once it is older than `windowMs`, and the map never holds more
 * than `maxEntries` ids (the oldest go first), so memory stays bounded whatever the publish rate.
 */
export class DedupeWindow {
  // Map iteration order is insertion order, which is also age order: eviction reads from the front.
  private readonly seen = new Map<string, { sequence: number; at: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The sequence stored under `msgId` if it is still inside the window. */
  lookup(msgId: string): number | undefined {
    this.evict();
    return this.seen.get(msgId)?.sequence;
  }

  remember(msgId: string, sequence: number): void {
    this.seen.set(msgId, { sequence, at: this.now() });
    this.evict();
  }

  get size(): number {
    return this.seen.size;
  }

  private evict(): void {
    const cutoff = this.now() - this.windowMs;
    for (const [id, entry] of this.seen) {
      if (entry.at > cutoff && this.seen.size <= this.maxEntries) break;
      this.seen.delete(id);
    }
  }
}
