// The keys of order-up's PostgreSQL advisory locks, in one place: every process must agree on them,
// and no two uses may share one. A two-key lock is (namespace, number); the migration lock is one bigint.

/** A process's lease: (LOCK_NS_PROCESS, its key), held for as long as it lives (db/process-lease.ts). */
export const LOCK_NS_PROCESS = 7100;
/** One /charge in flight across every process: (LOCK_NS_CHARGE, 0) (upstream/charge-lock.ts). */
export const LOCK_NS_CHARGE = 7101;
/** Serialises migrations across processes (db/orm.ts). */
export const MIGRATION_LOCK = 710_001;
