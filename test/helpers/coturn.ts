/**
 * Starts a real coturn (`turnserver`, Debian package coturn) on 127.0.0.1 for one test file, on
 * the project's own templates/coturn/turnserver.conf (as `deploy host` renders it, so tests run
 * against the hardening the servers get): its own ports, realm, secret (in a 0600 config file,
 * never on the command line), relay port range and a self-signed certificate made with openssl.
 * `stop()` kills it and removes its files.
 *
 * Parallel test files: each instance picks a random block of 100 ports below the kernel's
 * ephemeral range, checks them free, and proves that what answers on them is itself (the 401
 * to an unauthenticated Allocate carries this instance's unique realm); otherwise it retries.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { COTURN_USER, firewallVars, ownPeerLines } from '../../src/deploy/services/coturn.js'
import {
  Attr,
  attr,
  decodeMessage,
  encodeMessage,
  getErrorCode,
  getString,
  getXorAddress,
  Method,
  messageType,
  newTransactionId,
} from '../../src/protocols/stun.js'
import { renderTemplate, TEMPLATES_DIR } from '../../src/server/template.js'

const run = promisify(execFile)

export interface CoturnOptions {
  /** The static-auth-secret (default: 32 random bytes, hex). */
  secret?: string
  /** Default: a unique realm per instance. */
  realm?: string
  /** CN and subjectAltName of the certificate (default localhost). */
  certName?: string
  /** Run without authentication (no-auth): for tests that a client notices an open relay. */
  noAuth?: boolean
  /** Listen on UDP only (no-tcp, no-tls), like chatmail-turn and Madmail's embedded TURN. */
  udpOnly?: boolean
  /** Options of the real template to leave out (the caller says why). */
  omit?: string[]
  /**
   * The host's own addresses the template allows as peers (default 127.0.0.1 and ::1, this
   * instance's relayed addresses); [] renders it as for a host whose addresses are not known.
   */
  ownAddresses?: string[]
  /**
   * Load the template's nftables table (templates/coturn/relay-firewall.nft) for this instance's
   * relay ports, and run coturn as the turnserver user the table matches, as coturn.service does.
   * Needs root and nft. The table has a name of its own and is deleted by `stop()`.
   */
  firewall?: boolean
}

export interface Coturn {
  host: string
  /** UDP and TCP listening port. */
  port: number
  tlsPort: number
  secret: string
  realm: string
  /** The self-signed certificate: pass it as the CA. */
  caPem: string
  certName: string
  /** First relay port; the range is relayMin..relayMax. */
  relayMin: number
  relayMax: number
  /** What coturn logged so far. */
  log(): string
  /** With `firewall`: the name of its nftables table (inet family). */
  firewallTable?: string
  stop(): Promise<void>
}

const HOST = '127.0.0.1'
const BLOCK = 100
const FIRST_BLOCK_PORT = 20000
const BLOCKS = 120 // 20000..31999, below Linux's default ephemeral range (32768+)
const ATTEMPTS = 6
const READY_TIMEOUT_MS = 15_000

export async function startCoturn(opts: CoturnOptions = {}): Promise<Coturn> {
  await run('turnserver', ['--version']).catch(() => {
    throw new Error('turnserver is not installed: run `bash scripts/test-deps.sh` (Debian package coturn)')
  })
  const dir = await mkdtemp(join(tmpdir(), 'chatmail-coturn-'))
  try {
    const certName = opts.certName ?? 'localhost'
    const caPem = await makeCertificate(dir, certName)
    const secret = opts.secret ?? randomBytes(32).toString('hex')
    const realm = opts.realm ?? `coturn-${randomBytes(6).toString('hex')}.test`
    const failures: string[] = []
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const base = await freeBlock()
      const started = await tryStart({
        dir,
        base,
        secret,
        realm,
        certName,
        caPem,
        noAuth: opts.noAuth ?? false,
        udpOnly: opts.udpOnly ?? false,
        omit: opts.omit ?? [],
        ownAddresses: opts.ownAddresses ?? [HOST, '::1'],
        firewall: opts.firewall ?? false,
      })
      if ('instance' in started) return started.instance
      failures.push(`ports ${base}..${base + BLOCK - 1}: ${started.reason}`)
    }
    throw new Error(`coturn did not start:\n${failures.join('\n')}`)
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

async function makeCertificate(dir: string, name: string): Promise<string> {
  const san = /^[\d.]+$/.test(name) || name.includes(':') ? `IP:${name}` : `DNS:${name}`
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    `subjectAltName=${san}`,
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
  ])
  await chmod(join(dir, 'key.pem'), 0o600)
  return readFile(join(dir, 'cert.pem'), 'utf8')
}

interface StartArgs {
  ownAddresses: string[]
  firewall: boolean
  noAuth: boolean
  omit: string[]
  udpOnly: boolean
  dir: string
  base: number
  secret: string
  realm: string
  certName: string
  caPem: string
}

async function tryStart(a: StartArgs): Promise<{ instance: Coturn } | { reason: string }> {
  const port = a.base
  const tlsPort = a.base + 1
  const relayMin = a.base + 10
  const relayMax = a.base + BLOCK - 1
  const conf = join(a.dir, 'turnserver.conf')
  await writeFile(conf, config({ ...a, port, tlsPort, relayMin, relayMax }), { mode: 0o600 })
  await chmod(conf, 0o600)
  const firewallTable = a.firewall ? await loadFirewall(a.dir, relayMin, relayMax) : undefined
  // As the turnserver user, coturn opens its database (userdb, in the directory) after start-up.
  if (a.firewall) await run('chown', ['-R', `${COTURN_USER}:${COTURN_USER}`, a.dir])
  const dropFirewall = async () => {
    if (firewallTable) await run('nft', ['delete', 'table', 'inet', firewallTable]).catch(() => {})
  }
  const child = spawn('turnserver', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  const append = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-200_000)
  }
  child.stdout?.on('data', append)
  child.stderr?.on('data', append)
  const killOnExit = () => {
    child.kill('SIGKILL')
    // A process that ends without stop() must not leave its table behind.
    if (firewallTable) spawnSync('nft', ['delete', 'table', 'inet', firewallTable])
  }
  process.once('exit', killOnExit)
  const stop = async () => {
    process.off('exit', killOnExit)
    await kill(child)
    await dropFirewall()
  }
  const ready = await waitReady(child, () => log, {
    port,
    tlsPort,
    realm: a.realm,
    relayMin,
    relayMax,
    udpOnly: a.udpOnly,
  })
  if (ready !== true) {
    await stop()
    return { reason: `${ready}\n--- coturn log (tail) ---\n${log.slice(-3000)}` }
  }
  return {
    instance: {
      host: HOST,
      port,
      tlsPort,
      secret: a.secret,
      realm: a.realm,
      caPem: a.caPem,
      certName: a.certName,
      relayMin,
      relayMax,
      log: () => log,
      ...(firewallTable ? { firewallTable } : {}),
      stop: async () => {
        await stop()
        await rm(a.dir, { recursive: true, force: true })
      },
    },
  }
}

type ConfigArgs = StartArgs & { port: number; tlsPort: number; relayMin: number; relayMax: number }

function config(c: ConfigArgs): string {
  return c.noAuth ? testConfig(c) : templateConfig(c)
}

/** Options of the real template that this instance sets itself (ports, logging). */
const OWN_OPTIONS = /^(listening-port|tls-listening-port|min-port|max-port|syslog|simple-log)(=|$)/

/**
 * The template's nftables table for this instance (src/deploy/services/coturn.ts renders it the
 * same way), under a name of its own, loaded now. Returns the table's name.
 */
async function loadFirewall(dir: string, relayMin: number, relayMax: number): Promise<string> {
  const table = `chatmail_coturn_test_${process.pid}_${relayMin}`
  const text = readFileSync(join(TEMPLATES_DIR, 'coturn/relay-firewall.nft'), 'utf8')
  const vars = firewallVars({ table, user: COTURN_USER, relayMin, relayMax, publicAddresses: [] })
  const file = join(dir, 'relay-firewall.nft')
  await writeFile(file, renderTemplate(text, { ...vars, managed_by: 'rendered for a loopback test instance' }))
  await run('nft', ['-f', file]).catch((err: Error) => {
    throw new Error(`cannot load the coturn firewall table (needs root and nft): ${err.message}`)
  })
  return table
}

/**
 * The real templates/coturn/turnserver.conf, rendered as the deploy renders it, with what a
 * loopback instance needs instead: its own ports and files, loopback listeners and relays (IPv4
 * and IPv6), and loopback peers allowed: coturn refuses loopback peers before it reads its
 * allowed-peer-ip list, and this instance's own addresses (its relayed ones) are loopback ones.
 * Which addresses are allowed as peers is the template's own logic (ownPeerLines).
 */
function templateConfig(c: ConfigArgs): string {
  const text = readFileSync(join(TEMPLATES_DIR, 'coturn/turnserver.conf'), 'utf8')
  const rendered = renderTemplate(text, {
    managed_by: 'rendered for a loopback test instance',
    domain: c.realm,
    turn_port: c.port,
    turn_tls_port: c.tlsPort,
    turn_secret: c.secret,
    tls_cert: join(c.dir, 'cert.pem'),
    tls_key: join(c.dir, 'key.pem'),
    relay_min_port: c.relayMin,
    relay_max_port: c.relayMax,
    firewall_file: join(c.dir, 'relay-firewall.nft'),
    external_ip_line: '# external-ip: none on loopback',
    own_address_lines: ownPeerLines(c.ownAddresses),
  })
  const kept = rendered
    .split('\n')
    .filter((line) => !OWN_OPTIONS.test(line.trim()) && !c.omit.includes(line.trim().split('=')[0] as string))
  return `${[
    ...kept,
    '# --- loopback test instance ---',
    `listening-port=${c.port}`,
    `tls-listening-port=${c.tlsPort}`,
    `listening-ip=${HOST}`,
    `relay-ip=${HOST}`,
    'relay-ip=::1',
    `min-port=${c.relayMin}`,
    `max-port=${c.relayMax}`,
    'allow-loopback-peers',
    // As coturn.service runs it: the firewall table matches the turnserver user's sockets.
    ...(c.firewall ? [`proc-user=${COTURN_USER}`, `proc-group=${COTURN_USER}`] : []),
    ...(c.udpOnly ? ['no-tcp', 'no-tls'] : []),
    'no-dtls',
    'relay-threads=2',
    'log-file=stdout',
    'simple-log',
    `pidfile=${join(c.dir, 'turnserver.pid')}`,
    `userdb=${join(c.dir, 'turndb')}`,
  ].join('\n')}\n`
}

/** The no-auth instance (an open relay, for tests that a client notices one). */
function testConfig(c: ConfigArgs): string {
  return `${[
    `listening-ip=${HOST}`,
    `listening-port=${c.port}`,
    `tls-listening-port=${c.tlsPort}`,
    `relay-ip=${HOST}`,
    `min-port=${c.relayMin}`,
    `max-port=${c.relayMax}`,
    'fingerprint',
    'no-auth',
    ...(c.udpOnly ? ['no-tcp', 'no-tls'] : []),
    `realm=${c.realm}`,
    `cert=${join(c.dir, 'cert.pem')}`,
    `pkey=${join(c.dir, 'key.pem')}`,
    'no-dtls',
    'no-cli',
    'no-rfc5780',
    'allow-loopback-peers',
    'no-multicast-peers',
    'relay-threads=2',
    'log-file=stdout',
    'simple-log',
    `pidfile=${join(c.dir, 'turnserver.pid')}`,
    `userdb=${join(c.dir, 'turndb')}`,
  ].join('\n')}\n`
}

/** true when this coturn answers on UDP, TCP and TLS ports (UDP only: and not on TCP); otherwise why not. */
async function waitReady(
  child: ChildProcess,
  log: () => string,
  p: { port: number; tlsPort: number; realm: string; relayMin: number; relayMax: number; udpOnly: boolean },
): Promise<true | string> {
  const until = Date.now() + READY_TIMEOUT_MS
  let last = 'no answer yet'
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null)
      return `turnserver exited (${child.exitCode ?? child.signalCode})`
    if (/Address already in use|Cannot bind/i.test(log())) return 'a port was taken'
    const answer = await probe(p.port)
    if (answer.kind === 'other') {
      // Ours when the 401 names our realm, or (no-auth) the relayed port is in our range.
      const mine =
        answer.realm === p.realm || ((answer.relayPort ?? 0) >= p.relayMin && (answer.relayPort ?? 0) <= p.relayMax)
      if (!mine) return `another server answers on UDP ${p.port} (${answer.realm ?? `relay port ${answer.relayPort}`})`
      if (p.udpOnly) return (await tcpOpen(p.port)) ? `something listens on TCP ${p.port} despite no-tcp` : true
      if ((await tcpOpen(p.port)) && (await tcpOpen(p.tlsPort))) return true
      last = 'UDP answers, TCP/TLS not yet'
    } else if (answer.kind === 'odd') last = answer.why
    await sleep(100)
  }
  return `not ready within ${READY_TIMEOUT_MS}ms (${last})`
}

type ProbeAnswer =
  | { kind: 'other'; realm?: string; relayPort?: number }
  | { kind: 'odd'; why: string }
  | { kind: 'silent' }

/** Sends an unauthenticated Allocate over UDP: the 401 names the realm; a no-auth server allocates. */
function probe(port: number): Promise<ProbeAnswer> {
  const socket = createSocket('udp4')
  const transactionId = newTransactionId()
  const request = encodeMessage({
    type: messageType(Method.Allocate, 'request'),
    transactionId,
    attributes: [attr.requestedTransport(), attr.lifetime(30)],
  })
  return new Promise<ProbeAnswer>((resolve) => {
    const done = (v: ProbeAnswer) => {
      clearTimeout(timer)
      socket.close()
      resolve(v)
    }
    const timer = setTimeout(() => done({ kind: 'silent' }), 300)
    socket.on('error', () => done({ kind: 'silent' }))
    socket.on('message', (bytes) => {
      try {
        const msg = decodeMessage(bytes)
        if (!msg.transactionId.equals(transactionId)) return
        const realm = getString(msg, Attr.REALM)
        const relayPort = getXorAddress(msg, Attr.XOR_RELAYED_ADDRESS)?.port
        if (realm === undefined && relayPort === undefined) {
          done({ kind: 'odd', why: `answer ${getErrorCode(msg)?.code ?? msg.type} without realm or relay` })
        } else done({ kind: 'other', ...(realm ? { realm } : {}), ...(relayPort ? { relayPort } : {}) })
      } catch (err) {
        done({ kind: 'odd', why: (err as Error).message })
      }
    })
    socket.send(request, port, HOST)
  })
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: HOST, port })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

/** A random block of ports whose listening ports are free on UDP and TCP right now. */
async function freeBlock(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = FIRST_BLOCK_PORT + BLOCK * Math.floor(Math.random() * BLOCKS)
    if ((await udpFree(base)) && (await tcpFree(base)) && (await tcpFree(base + 1))) return base
  }
  throw new Error('no free port block found for coturn')
}

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, HOST, () => server.close(() => resolve(true)))
  })
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4')
    socket.once('error', () => {
      socket.close()
      resolve(false)
    })
    socket.bind(port, HOST, () => socket.close(() => resolve(true)))
  })
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
  await exited
  clearTimeout(timer)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
