// node-postgres as applications and Evidence's PostgreSQL connector use it, against the SQL
// endpoint. Prints one JSON object: what each step answered. Usage: node clients.js PORT
'use strict';
const pg = require('pg');
const Cursor = require('pg-cursor');

const port = Number(process.argv[2]);
const config = { host: '127.0.0.1', port, database: 'northstar', user: 'analyst' };
// As Evidence does: bigints as numbers rather than strings.
pg.types.setTypeParser(20, (value) => parseInt(value, 10));
// Dates as the text the server sent, so the comparison does not depend on the time zone.
pg.types.setTypeParser(1082, (value) => value);

const WEEKLY = 'SELECT metric_time__week, platform, sessions FROM semantic.metrics ' +
  'WHERE metric_time__week >= $1 AND metric_time__week < $2 ORDER BY 1, 2';
const DAILY = 'SELECT metric_time__day, sessions FROM semantic.metrics ' +
  'WHERE metric_time__day >= $1 AND metric_time__day <= $2 ORDER BY 1';

async function plain() {
  const client = new pg.Client(config);
  await client.connect();
  try {
    // JS Dates: node-postgres sends them as `2026-01-05T00:00:00.000+00:00` (untyped text).
    const weekly = await client.query(WEEKLY, [new Date(Date.UTC(2026, 0, 5)), new Date(Date.UTC(2026, 1, 2))]);
    const daily = await client.query(DAILY, [new Date(Date.UTC(2026, 1, 1)), new Date(Date.UTC(2026, 1, 3))]);
    return {
      weekly: weekly.rows.map((r) => [r.metric_time__week, r.platform, r.sessions]),
      weekly_types: weekly.fields.map((f) => f.dataTypeID),
      daily: daily.rows.map((r) => [r.metric_time__day, r.sessions]),
    };
  } finally {
    await client.end();
  }
}

// Evidence's runQuery: search_path set on connect, a count over the query, then a cursor read
// in batches (an Execute with a row limit, then the rest of the same portal).
async function evidence(query, batchSize) {
  const pool = new pg.Pool(config);
  pool.on('connect', (client) => { client.query('SET search_path TO semantic'); });
  const connection = await pool.connect();
  try {
    const count = await connection.query(`WITH root as (${query}) SELECT COUNT(*) as rows FROM root`);
    const cursor = connection.query(new Cursor(query));
    const batches = [];
    let rows;
    while ((rows = await cursor.read(batchSize)) && rows.length > 0) batches.push(rows.map((r) => Object.values(r)));
    const fields = cursor._result.fields.map((f) => [f.name, f.dataTypeID]);
    await cursor.close();
    return { expected_rows: count.rows[0].rows, batches, fields };
  } finally {
    connection.release();
    await pool.end();
  }
}

(async () => {
  const out = await plain();
  out.evidence = await evidence(
    'SELECT metric_time__month, active_users FROM metrics ORDER BY metric_time__month', 2);
  process.stdout.write(JSON.stringify(out));
})().catch((error) => {
  process.stderr.write(`${error.code || ''} ${error.message}\n`);
  process.exit(1);
});
