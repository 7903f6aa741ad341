/**
 * Runs `task` over `items` with at most `limit` in flight, in order of
 * start. The first failure stops new tasks from starting; tasks already
 * running finish, then the failure is thrown.
 */
export async function forEachBounded<T>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        await task(items[i]!, i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
  await Promise.all(workers);
  if (failure) throw failure.err;
}
