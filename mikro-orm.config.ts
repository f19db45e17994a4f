// For the MikroORM CLI (`npx mikro-orm-esm migration:create`, `migration:list`): set DATABASE_URL.
// The service itself builds the same options in src/db/orm.ts.
import { defineConfig } from '@mikro-orm/postgresql';
import { ormOptions } from './src/db/orm.js';

export default defineConfig({
  ...ormOptions(process.env.DATABASE_URL ?? 'postgres://localhost:5432/order_up'),
  migrations: {
    ...ormOptions('').migrations,
    path: './dist/src/db/migrations',
    pathTs: './src/db/migrations',
  },
});
