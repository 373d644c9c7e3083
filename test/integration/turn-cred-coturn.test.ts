/**
 * The proof that `chatmail turn-cred` mints credentials a real coturn accepts: the built CLI
 * (`node bin/run.js`, run `npm run build` first) with the secret `chatmail init` wrote, checked
 * with coturn's own client (turnutils_uclient) and with our allocate(), over UDP, TCP and TLS;
 * and forged or expired credentials are refused by both.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tamperPassword } from '../../src/doctor/checks/turn.js'
import { parseTurnMetadata } from '../../src/protocols/metadata-values.js'
import { mintTurnCredential } from '../../src/protocols/turn-rest.js'
import { allocate, TurnError } from '../../src/turn/client.js'
import { type Coturn, startCoturn } from '../helpers/coturn.js'

const BIN = resolve('bin/run.js')
const UCLIENT_KILL_MS = 30_000

interface Run {
  code: number | string
  stdout: string
  stderr: string
}

function exec(file: string, args: string[], cwd: string, timeout = UCLIENT_KILL_MS): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd, timeout, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null
      done({ code: e ? (e.signal ?? e.code ?? 1) : 0, stdout, stderr })
    })
  })
}

const chatmail = (args: string[]) => exec(process.execPath, [BIN, ...args], dir)

let dir: string
let coturn: Coturn
let caFile: string

beforeAll(async () => {
  if (!existsSync(BIN)) throw new Error('bin/run.js is missing')
  dir = await mkdtemp(join(tmpdir(), 'chatmail-turn-cred-'))
  const init = await chatmail(['init', '127.0.0.1'])
  expect(init.code, init.stderr).toBe(0)
  const config = parseToml(await readFile(join(dir, 'chatmail.toml'), 'utf8')) as { turn: { secret: string } }
  // turnutils_uclient 4.6.1's client-to-client TLS mode (-S -y) stalls on its second handshake
  // when coturn refuses TLS 1.0/1.1 as the deployed config does (openssl s_client and our own
  // allocate() open several TLS connections to it fine), so this instance allows them.
  coturn = await startCoturn({ secret: config.turn.secret, certName: 'localhost', omit: ['no-tlsv1', 'no-tlsv1_1'] })
  caFile = join(dir, 'ca.pem')
  await writeFile(caFile, coturn.caPem)
})

afterAll(async () => {
  await coturn?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** `chatmail turn-cred --format line` against the test coturn, parsed as Delta Chat parses it. */
async function mintLine(extra: string[] = []): Promise<{ username: string; password: string; line: string }> {
  const r = await chatmail(['turn-cred', '--format', 'line', '--ttl', '10m', '--port', String(coturn.port), ...extra])
  expect(r.code, r.stderr).toBe(0)
  const line = r.stdout.trim()
  const parsed = parseTurnMetadata(line)
  if (!parsed.ok) throw new Error(`turn-cred printed an unparsable line: ${line} (${parsed.reason})`)
  expect(parsed.value.host).toBe('127.0.0.1')
  expect(parsed.value.port).toBe(coturn.port)
  return { username: parsed.value.username, password: parsed.value.password, line }
}

type Mode = 'udp' | 'tcp' | 'tls'

/** turnutils_uclient -v with client-to-client relaying (-y): one allocation per client, data through them. */
function uclient(mode: Mode, username: string, password: string): Promise<Run> {
  const flags = { udp: [], tcp: ['-t'], tls: ['-t', '-S', '-E', caFile] }[mode]
  const port = mode === 'tls' ? coturn.tlsPort : coturn.port
  // Over TLS uclient's data phase stalls now and then with more than one message; one suffices.
  const messages = mode === 'tls' ? '1' : '3'
  return exec(
    'turnutils_uclient',
    ['-v', ...flags, '-y', '-n', messages, '-m', '1', '-u', username, '-w', password, '-p', String(port), coturn.host],
    dir,
  )
}

/** uclient exits 0 on some failures: a success needs the relay address and no lost packets too. */
function expectAllocated(r: Run): void {
  const out = r.stdout + r.stderr
  expect(out).not.toMatch(/Cannot complete Allocation/)
  expect(r.code, out.slice(-2000)).toBe(0)
  const relays = [...out.matchAll(/Received relay addr: 127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]))
  expect(relays.length).toBeGreaterThanOrEqual(2) // -y: two clients, each with its own allocation
  for (const port of relays) {
    expect(port).toBeGreaterThanOrEqual(coturn.relayMin)
    expect(port).toBeLessThanOrEqual(coturn.relayMax)
  }
  expect(out).toMatch(/Total lost packets 0 \(0\.0+%\)/)
}

function expectRefused(r: Run): void {
  const out = r.stdout + r.stderr
  expect(r.code).toBe(255)
  expect(out).toMatch(/Cannot complete Allocation/)
  expect(out).not.toMatch(/Received relay addr/)
}

describe('credentials from `chatmail turn-cred --format line` on coturn (turnutils_uclient)', () => {
  for (const mode of ['udp', 'tcp', 'tls'] as const) {
    it(`allocate over ${mode}`, async () => {
      const { username, password } = await mintLine()
      expectAllocated(await uclient(mode, username, password))
    })
  }

  it('a tampered password is refused (udp and tcp)', async () => {
    const { username, password } = await mintLine()
    expectRefused(await uclient('udp', username, tamperPassword(password)))
    expectRefused(await uclient('tcp', username, tamperPassword(password)))
  })

  it('expired credentials are refused', async () => {
    const config = parseToml(await readFile(join(dir, 'chatmail.toml'), 'utf8')) as { turn: { secret: string } }
    const expired = mintTurnCredential(config.turn.secret, { ttlSeconds: 600, nowMs: Date.now() - 3600_000 })
    expect(expired.expires * 1000).toBeLessThan(Date.now())
    expectRefused(await uclient('udp', expired.username, expired.password))
    // The same secret with a future expiry works: the refusal above is about the time.
    const valid = mintTurnCredential(config.turn.secret, { ttlSeconds: 600, nowMs: Date.now() })
    expectAllocated(await uclient('udp', valid.username, valid.password))
  })

  it('credentials minted from another secret (--secret-file) are refused; the right one via --secret-file works', async () => {
    const wrong = join(dir, 'wrong-secret')
    await writeFile(wrong, 'a-different-secret-0123456789\n', { mode: 0o600 })
    const bad = await mintLine(['--secret-file', wrong])
    expectRefused(await uclient('udp', bad.username, bad.password))

    const config = parseToml(await readFile(join(dir, 'chatmail.toml'), 'utf8')) as { turn: { secret: string } }
    const right = join(dir, 'right-secret')
    await writeFile(right, `${config.turn.secret}\n`, { mode: 0o600 })
    const good = await mintLine(['--secret-file', right])
    expectAllocated(await uclient('udp', good.username, good.password))
  })

  it('`turn-cred --verify` accepts the line it minted and rejects a tampered one', async () => {
    const { line, password } = await mintLine()
    expect((await chatmail(['turn-cred', '--verify', line])).code).toBe(0)
    const forged = await chatmail(['turn-cred', '--verify', line.replace(password, tamperPassword(password))])
    expect(forged.code).toBe(1)
    expect(forged.stderr).toMatch(/bad signature/)
  })
})

describe('`chatmail turn-cred --format uclient` prints a command that runs', () => {
  async function uclientCommand(): Promise<string> {
    const r = await chatmail(['turn-cred', '--format', 'uclient', '--ttl', '10m', '--port', String(coturn.port)])
    expect(r.code, r.stderr).toBe(0)
    const cmd = r.stdout.trim()
    expect(cmd).toMatch(
      new RegExp(`^turnutils_uclient -y -n 3 -m 1 -u \\d+ -w \\S+ -p ${coturn.port} 127\\.0\\.0\\.1$`),
    )
    return cmd
  }

  it('as printed: exit 0 and no lost packets', async () => {
    const r = await exec('sh', ['-c', await uclientCommand()], dir)
    expect(r.code, (r.stdout + r.stderr).slice(-2000)).toBe(0)
    expect(r.stdout + r.stderr).toMatch(/Total lost packets 0 \(0\.0+%\)/)
    expect(r.stdout + r.stderr).not.toMatch(/Cannot complete Allocation/)
  })

  it('the same command with a tampered password fails', async () => {
    const cmd = await uclientCommand()
    const password = /-w (\S+)/.exec(cmd)?.[1] as string
    const r = await exec('sh', ['-c', cmd.replace(`-w ${password}`, `-w ${tamperPassword(password)}`)], dir)
    expectRefused(r)
  })
})

describe('our allocate() with the same credentials on the same coturn', () => {
  for (const transport of ['udp', 'tcp', 'tls'] as const) {
    it(`relays over ${transport}`, async () => {
      const { username, password } = await mintLine()
      const r = await allocate({
        host: coturn.host,
        port: transport === 'tls' ? coturn.tlsPort : coturn.port,
        transport,
        username,
        password,
        timeoutMs: 5000,
        tls: { ca: coturn.caPem, servername: 'localhost' },
      })
      expect(r.relayed).toMatchObject({ address: '127.0.0.1', family: 'IPv4' })
      expect(r.relayed.port).toBeGreaterThanOrEqual(coturn.relayMin)
      expect(r.relayed.port).toBeLessThanOrEqual(coturn.relayMax)
      expect(r.realm).toBe(coturn.realm)
      expect(r.released).toBe(true)
    })
  }

  it('refuses tampered and expired credentials with kind auth', async () => {
    const { username, password } = await mintLine()
    const config = parseToml(await readFile(join(dir, 'chatmail.toml'), 'utf8')) as { turn: { secret: string } }
    const expired = mintTurnCredential(config.turn.secret, { ttlSeconds: 60, nowMs: Date.now() - 3600_000 })
    for (const cred of [
      { username, password: tamperPassword(password) },
      { username: expired.username, password: expired.password },
    ]) {
      const err = await allocate({
        host: coturn.host,
        port: coturn.port,
        transport: 'udp',
        timeoutMs: 5000,
        ...cred,
      }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(TurnError)
      expect((err as TurnError).kind).toBe('auth')
      expect((err as TurnError).code).toBe(401)
    }
  })
})
