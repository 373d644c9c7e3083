/**
 * The sign-up endpoint behind nginx (`location = /new` → this unix socket): POST /new[?i=TOKEN]
 * answers `{"email","password"}` (plus `dclogin_url` on a self-signed server), as chatmail relays
 * do and Delta Chat core's `dcaccount:` handling expects; a refusal is `{"reason"}` with a 4xx/5xx
 * status, which core shows the user. The client address is nginx's X-Real-IP. With `dclogin_url`
 * comes `dclogin_qr_svg`, that link's QR code, which the sign-up page shows (a phone scans it from
 * a computer's screen, as on a chatmail relay's page). A browser's POST from another web site is
 * refused (crossSiteOrigin).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { qrSvg } from '../../signup/links.js'
import type { Logger } from '../lib/log.js'
import type { Accounts } from './accounts.js'

function send(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...extra,
  })
  res.end(text)
}

function clientOf(req: IncomingMessage): string {
  const h = req.headers['x-real-ip']
  return typeof h === 'string' && /^[0-9a-fA-F:.]{2,45}$/.test(h) ? h : 'unknown'
}

/**
 * Why a POST comes from another web site, or undefined. Any web page can make its visitors'
 * browsers POST here (a form, or fetch() without a body type, needs no CORS preflight), so a
 * browser's POST must come from this server's own page (signup.js on https://HOST/, HOST as nginx
 * passes it: the domain or the IP). Browsers name the page in Origin (and Sec-Fetch-Site); Delta
 * Chat core's HTTP client, like curl, sends neither and is let through.
 */
function crossSiteOrigin(req: IncomingMessage): string | undefined {
  const origin = req.headers.origin
  const site = req.headers['sec-fetch-site']
  const host = req.headers.host?.toLowerCase()
  if (origin !== undefined && (!host || origin.toLowerCase() !== `https://${host}`)) return origin
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return `a ${site} page`
  return undefined
}

export function createSignupServer(accounts: Accounts, log: Logger): Server {
  const server = createServer((req, res) => {
    req.resume()
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname !== '/new') {
      send(res, 404, { reason: 'not found' })
      return
    }
    if (req.method !== 'POST') {
      send(res, 405, { reason: 'use POST to create an account' }, { allow: 'POST' })
      return
    }
    const client = clientOf(req)
    const foreign = crossSiteOrigin(req)
    if (foreign !== undefined) {
      log('info', `sign-up refused for ${client}: a POST from ${foreign.slice(0, 100)}`)
      send(res, 403, { reason: 'accounts are made by Delta Chat or this server’s own page, not by other web sites' })
      return
    }
    accounts
      .signup(client, url.searchParams.get('i') ?? undefined)
      .then((r) => {
        if (r.ok) {
          const body: Record<string, string> = { email: r.email, password: r.password }
          if (r.dcloginUrl) {
            body.dclogin_url = r.dcloginUrl
            body.dclogin_qr_svg = qrSvg(r.dcloginUrl)
          }
          send(res, 200, body)
        } else {
          log('info', `sign-up refused for ${client}: ${r.reason}`)
          send(res, r.status, { reason: r.reason })
        }
      })
      .catch((err: unknown) => {
        log('error', `sign-up failed: ${(err as Error).message}`)
        send(res, 500, { reason: 'the server could not create an account: try again later' })
      })
  })
  server.headersTimeout = 10_000
  server.requestTimeout = 15_000
  server.keepAliveTimeout = 5_000
  server.maxHeadersCount = 50
  server.maxConnections = 512
  return server
}
