/**
 * Coalesces point lookups into batched queries, the way the group-commit
 * writer coalesces appends: no timer — while up to `concurrency` batches are
 * in flight, new keys wait and go together in the next one; an idle lookup
 * goes out at once, so a lone caller is not delayed.
 */
export class GroupLookup<K, V> {
  private pending = new Map<K, { resolve: (v: V | undefined) => void; reject: (e: unknown) => void }[]>();
  private inFlight = 0;

  constructor(
    private readonly fetch: (keys: K[]) => Promise<Map<K, V>>,
    private readonly options: { maxBatch?: number; concurrency?: number } = {},
  ) {}

  get(key: K): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      const waiters = this.pending.get(key);
      if (waiters) waiters.push({ resolve, reject });
      else this.pending.set(key, [{ resolve, reject }]);
      this.pump();
    });
  }

  private pump(): void {
    const concurrency = this.options.concurrency ?? 2;
    const maxBatch = this.options.maxBatch ?? 1000;
    while (this.inFlight < concurrency && this.pending.size > 0) {
      const batch = new Map<K, { resolve: (v: V | undefined) => void; reject: (e: unknown) => void }[]>();
      for (const [k, w] of this.pending) {
        if (batch.size >= maxBatch) break;
        batch.set(k, w);
      }
      for (const k of batch.keys()) this.pending.delete(k);
      this.inFlight++;
      this.fetch([...batch.keys()])
        .then(
          (found) => {
            for (const [k, ws] of batch) for (const w of ws) w.resolve(found.get(k));
          },
          (err: unknown) => {
            for (const ws of batch.values()) for (const w of ws) w.reject(err);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
