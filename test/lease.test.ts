import net from 'node:net';
import { expect, test } from '@jest/globals';
import { createLogger } from '../src/log.js';
import { Lease } from '../src/db/process-lease.js';

// Taking a lease talks to the database on a connection of its own; a database that drops that
// connection at once (restarting, too many clients) must make it fail as a plain rejection - an
// event from the half-made lease must not escape as an uncaught exception and crash the process.
test.each(['closes the connection at once', 'answers FATAL and closes'])(
  'when the database %s while a lease is taken, then taking it fails cleanly',
  async (how) => {
    const server = net.createServer((socket) => {
      if (how.startsWith('closes')) {
        socket.destroy();
        return;
      }
      socket.once('data', () => {
        const fields = Buffer.from('SFATAL\0C53300\0Msorry, too many clients already\0\0', 'latin1');
        const length = Buffer.alloc(4);
        length.writeInt32BE(fields.length + 4);
        socket.end(Buffer.concat([Buffer.from('E'), length, fields]));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const port = (server.address() as net.AddressInfo).port;
      await expect(
        Lease.acquire(`postgres://u:p@127.0.0.1:${port}/x`, createLogger({ level: 'silent' }), { pingMs: 100, silentLimitMs: 1000 }),
      ).rejects.toThrow();
      await new Promise((resolve) => setImmediate(resolve));
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  },
);
