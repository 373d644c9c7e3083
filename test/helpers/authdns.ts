/**
 * A real authoritative DNS server (Debian's Knot DNS, `knotd`) serving zones a test writes:
 *
 *   const dns = await startAuthDns()                       // 127.0.0.1, a free port
 *   await dns.setZone('one.test', 'one.test. 3600 IN A 10.213.12.2\n')   // SOA and NS added here
 *   chatmail dns one.test --check --nameserver 127.0.0.1:${dns.port}
 *   await dns.stop()
 *
 * - Listens on `listen` (default 127.0.0.1) at `port` (default: a free one; 53 for a host that uses
 *   it as its resolver: an authoritative server answers a stub resolver for its own zones). Nothing
 *   leaves the addresses given.
 * - `setZone` writes the zone (records with fully qualified owners, as `chatmail dns --zonefile`
 *   prints them, or relative ones under the zone's $ORIGIN), adds SOA and NS with a new serial,
 *   and waits until knotd serves that serial. A zone knotd refuses throws with knotd's reason.
 * - Everything lives in a temporary directory; `stop()` ends knotd and removes it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { query } from '../../src/dns/query.js'

export interface AuthDnsOptions {
  /** Addresses to listen on (default ['127.0.0.1']). */
  listen?: string[]
  /** Port (default: a free loopback port). */
  port?: number
}

export interface AuthDns {
  /** The first listen address. */
  address: string
  port: number
  /** `ADDRESS:PORT`, what --nameserver takes. */
  server: string
  /** Serves `records` as zone `zone` (replacing what it served before). */
  setZone(zone: string, records: string): Promise<void>
  /** Stops serving a zone. */
  removeZone(zone: string): Promise<void>
  /** knotd's output so far. */
  log(): string
  stop(): Promise<void>
}

const run = promisify(execFile)

async function freePort(address: string): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((ok, fail) => {
      const s = createServer()
      s.once('error', fail)
      s.listen(0, address, () => {
        const p = (s.address() as { port: number }).port
        s.close(() => ok(p))
      })
    })
    const udpFree = await new Promise<boolean>((ok) => {
      const u = createSocket(address.includes(':') ? 'udp6' : 'udp4')
      u.once('error', () => ok(false))
      u.bind(port, address, () => u.close(() => ok(true)))
    })
    if (udpFree) return port
  }
  throw new Error('no free port for knotd')
}

const norm = (z: string) => z.toLowerCase().replace(/\.$/, '')

export async function startAuthDns(o: AuthDnsOptions = {}): Promise<AuthDns> {
  if (!existsSync('/usr/sbin/knotd'))
    throw new Error('knotd is not installed (bash scripts/test-deps.sh installs knot)')
  const listen = o.listen ?? ['127.0.0.1']
  const address = listen[0] as string
  const port = o.port ?? (await freePort(address))
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-authdns-'))
  const zonesDir = join(dir, 'zones')
  mkdirSync(zonesDir)
  const socket = join(dir, 'knot.sock')
  const conf = join(dir, 'knot.conf')
  const zones = new Map<string, number>()
  let serial = Math.floor(Date.now() / 1000)
  let output = ''

  const writeConf = () => {
    const lines = [
      'server:',
      ...listen.map((a) => `    listen: ${a}@${port}`),
      `    rundir: "${dir}"`,
      '    udp-workers: 1',
      '    tcp-workers: 1',
      '    background-workers: 1',
      'control:',
      `    listen: "${socket}"`,
      'database:',
      `    storage: "${dir}"`,
      'log:',
      '  - target: stderr',
      '    any: info',
      'template:',
      '  - id: default',
      `    storage: "${zonesDir}"`,
      '    file: "%s.zone"',
      '    zonefile-sync: -1',
      '    zonefile-load: whole',
      '    journal-content: none',
      '    semantic-checks: on',
      ...(zones.size ? ['zone:', ...[...zones.keys()].map((z) => `  - domain: ${z}`)] : []),
    ]
    writeFileSync(conf, `${lines.join('\n')}\n`)
  }
  const knotc = async (...args: string[]) => {
    try {
      return (await run('/usr/sbin/knotc', ['-c', conf, '-s', socket, '-t', '10', ...args])).stdout
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string }
      throw new Error(`knotc ${args.join(' ')}: ${(e.stderr || e.stdout || e.message).trim()}\n${output.slice(-3000)}`)
    }
  }
  const servedSerial = async (zone: string): Promise<number | undefined> => {
    try {
      const r = await query({ address, port }, zone, 'SOA', { timeoutMs: 1000 })
      const soa = r.answers.find((a) => a.type === 'SOA')
      return soa && r.authoritative ? Number(soa.value.split(' ')[1]) : undefined
    } catch {
      return undefined
    }
  }
  const waitFor = async (zone: string, want: number) => {
    for (let i = 0; i < 100; i++) {
      if ((await servedSerial(zone)) === want) return
      await new Promise((r) => setTimeout(r, 100))
    }
    const status = await knotc('zone-status', zone).catch((e: Error) => e.message)
    throw new Error(`knotd does not serve ${zone} serial ${want}: ${status}\n${output.slice(-3000)}`)
  }

  writeConf()
  const child: ChildProcess = spawn('/usr/sbin/knotd', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
  const keep = (d: Buffer) => {
    output = `${output}${d.toString('utf8')}`.slice(-50_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((ok) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        child.once('exit', () => {
          clearTimeout(timer)
          ok()
        })
        child.kill('SIGTERM')
      })
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`knotd exited with ${child.exitCode}:\n${output}`)
      if (
        existsSync(socket) &&
        (await knotc('status').then(
          () => true,
          () => false,
        ))
      )
        break
      if (i >= 100) throw new Error(`knotd did not start:\n${output}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  } catch (err) {
    await stop()
    throw err
  }

  return {
    address,
    port,
    server: address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`,
    async setZone(zoneName, records) {
      const zone = norm(zoneName)
      serial += 1
      const text = [
        `$ORIGIN ${zone}.`,
        '$TTL 60',
        `@ 60 IN SOA ns1.${zone}. hostmaster.${zone}. ${serial} 3600 600 86400 60`,
        `@ 60 IN NS ns1.${zone}.`,
        `ns1.${zone}. 60 IN A ${address.includes(':') ? '127.0.0.1' : address}`,
        records,
        '',
      ].join('\n')
      writeFileSync(join(zonesDir, `${zone}.zone`), text)
      if (!zones.has(zone)) {
        zones.set(zone, serial)
        writeConf()
        await knotc('reload')
      } else {
        zones.set(zone, serial)
        await knotc('-b', 'zone-reload', zone)
      }
      await waitFor(zone, serial)
    },
    async removeZone(zoneName) {
      const zone = norm(zoneName)
      if (!zones.delete(zone)) return
      writeConf()
      await knotc('reload')
      rmSync(join(zonesDir, `${zone}.zone`), { force: true })
    },
    log: () => output,
    stop,
  }
}
