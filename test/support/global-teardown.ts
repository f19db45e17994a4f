// Jest globalTeardown: stops the embedded PostgreSQL that global-setup started (a no-op when
// DATABASE_URL was used or when setup reused an instance owned by another, concurrent run).
export default async function globalTeardown(): Promise<void> {
  const db = globalThis.__orderUpTestDb;
  globalThis.__orderUpTestDb = undefined;
  await db?.stop();
}
