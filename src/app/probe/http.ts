/**
 * The prober's HTTP side, in the style of Prometheus' blackbox_exporter: GET /probe?target=NAME
 * runs the doctor against NAME (only a name from the targets file: anything else is refused, so
 * the prober is no open proxy for probing arbitrary hosts), GET /metrics is the prober's own.
 * Requests are small and quick or refused: the request line and headers are capped, slow senders
 * cut off, connections bounded.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { EXPOSITION_CONTENT_TYPE } from '../../protocols/exposition.js'
import type { Prober } from './prober.js'

const MAX_URL = 1024
const MAX_CONNECTIONS = 64

const INDEX = `chatmail probe: the chatmail doctor as a Prometheus exporter
  /probe?target=NAME   one doctor run against NAME (a target of the targets file)
  /metrics             the prober's own metrics
`

function answer(res: ServerResponse, code: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

async function handle(prober: Prober, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let path = 'other'
  const done = (code: number, body: string, type?: string) => {
    const known = path === '/probe' || path === '/metrics' || path === '/'
    prober.requests.add({ path: known ? path : 'other', code: String(code) })
    answer(res, code, body, type)
  }
  if ((req.url ?? '').length > MAX_URL) return done(414, 'request URL too long\n')
  const url = new URL(req.url ?? '/', 'http://prober.invalid')
  path = url.pathname
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD')
    return done(405, 'only GET\n')
  }
  if (path === '/') return done(200, INDEX)
  if (path === '/metrics') return done(200, prober.metrics(), EXPOSITION_CONTENT_TYPE)
  if (path !== '/probe') return done(404, 'not found: /probe?target=NAME or /metrics\n')
  const names = url.searchParams.getAll('target')
  if (names.length !== 1 || !names[0]) return done(400, 'give one target: /probe?target=NAME\n')
  const name = names[0]
  if (!prober.has(name)) return done(403, 'not a target of this prober (only names in its targets file are probed)\n')
  try {
    done(200, await prober.probe(name), EXPOSITION_CONTENT_TYPE)
  } catch (err) {
    done(500, `the doctor run broke: ${(err as Error).message.split('\n')[0]}\n`)
  }
}

export interface Listening {
  server: Server
  address: AddressInfo
  close(): Promise<void>
}

/** Listens on host:port (port 0: any free one) and serves the prober. */
export async function serveProber(prober: Prober, host: string, port: number): Promise<Listening> {
  const server = createServer(
    { maxHeaderSize: 8192, headersTimeout: 10_000, requestTimeout: 15_000, keepAliveTimeout: 5_000 },
    (req, res) => {
      handle(prober, req, res).catch(() => {
        if (!res.headersSent) answer(res, 500, 'internal error\n')
        else res.destroy()
      })
    },
  )
  server.maxConnections = MAX_CONNECTIONS
  await new Promise<void>((ready, fail) => {
    server.once('error', fail)
    server.listen(port, host, () => {
      server.off('error', fail)
      ready()
    })
  })
  return {
    server,
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((closed) => {
        server.close(() => closed())
        server.closeAllConnections()
      }),
  }
}
