/**
 * Debian's `pebble` (an RFC 8555 ACME test server) on the runner side of a test host's veth, for
 * testing `tls.mode = "acme"` end to end:
 *
 *   const pebble = await startPebble({ listenIp: host.runnerIp, targetIp: host.host })
 *   // tls.acme_directory = pebble.directoryUrl; the guest must trust pebble.tlsCaPem
 *   await pebble.stop()
 *
 * - pebble listens on LISTEN_IP:14000 (ACME) and LISTEN_IP:15000 (management): the ports
 *   scripts/testhost.sh lets the guest reach on the runner.
 * - HTTP-01 challenges are really validated, against port 80 of the guest (no
 *   PEBBLE_VA_ALWAYS_VALID).
 * - Names resolve through Debian's `pebble-challtestsrv` as pebble's DNS server, on loopback: every
 *   A query is answered with the guest's address, AAAA with nothing. Nothing touches /etc/hosts.
 * - pebble's own HTTPS uses a certificate made here for LISTEN_IP, signed by a throwaway CA
 *   (`tlsCaPem`). The certificates pebble issues chain to another root, `rootCaPem()`, which
 *   pebble makes afresh on every start.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface PebbleOptions {
  /** Address pebble listens on: the runner's end of the test host's veth (10.213.N.1). */
  listenIp: string
  /** Address every name resolves to for validation: the guest (10.213.N.2). */
  targetIp: string
  /** ACME port (default 14000). */
  port?: number
  /** Management port (default 15000). */
  managementPort?: number
}

export interface Pebble {
  /** The ACME directory URL, e.g. https://10.213.11.1:14000/dir. */
  directoryUrl: string
  /** The root of the certificates pebble issues (from the management port's /roots/0). */
  rootCaPem(): Promise<string>
  /** The CA that signed pebble's own HTTPS certificate: clients of the directory must trust it. */
  tlsCaPem: string
  /** pebble's and challtestsrv's output so far, for error messages. */
  log(): string
  stop(): Promise<void>
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** A CA and, signed by it, a certificate for `ip` (pebble's HTTPS). */
function makeTlsCertificate(dir: string, ip: string): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-days',
      '2',
      '-subj',
      '/CN=chatmail test pebble TLS CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
    ],
    dir,
  )
  openssl(['req', ...ec, '-subj', `/CN=${ip}`, '-keyout', 'key.pem', '-out', 'cert.csr'], dir)
  writeFileSync(
    join(dir, 'ext.cnf'),
    `subjectAltName=IP:${ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n`,
  )
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'cert.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
      '-out',
      'cert.pem',
    ],
    dir,
  )
}

/** A loopback port free for both TCP and UDP (challtestsrv serves DNS on both). */
async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((ok, fail) => {
      const s = createServer()
      s.once('error', fail)
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port
        s.close(() => ok(p))
      })
    })
    const udpFree = await new Promise<boolean>((ok) => {
      const u = createSocket('udp4')
      u.once('error', () => ok(false))
      u.bind(port, '127.0.0.1', () => u.close(() => ok(true)))
    })
    if (udpFree) return port
  }
  throw new Error('no free loopback port')
}

function httpsGet(url: string, ca: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request(url, { ca, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        body += d
      })
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }))
      res.on('error', fail)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)))
    req.on('error', fail)
    req.end()
  })
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((ok) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => {
      clearTimeout(timer)
      ok()
    })
    child.kill('SIGTERM')
  })
}

export async function startPebble(o: PebbleOptions): Promise<Pebble> {
  const dir = mkdtempSync(join(tmpdir(), 'chatmail-pebble-'))
  const port = o.port ?? 14000
  const managementPort = o.managementPort ?? 15000
  let output = ''
  const children: ChildProcess[] = []
  const launch = (name: string, args: string[], env: Record<string, string> = {}) => {
    const child = spawn(name, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    const keep = (d: Buffer) => {
      output = `${output}${d.toString('utf8')}`.slice(-20_000)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.on('error', (err) => keep(Buffer.from(`${name}: ${err.message}\n`)))
    children.push(child)
    return child
  }
  const stop = async () => {
    await Promise.all(children.map(stopChild))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    makeTlsCertificate(dir, o.listenIp)
    const tlsCaPem = readFileSync(join(dir, 'ca.pem'), 'utf8')
    const dnsPort = await freePort()
    const dnsManagementPort = await freePort()
    launch('pebble-challtestsrv', [
      '-defaultIPv4',
      o.targetIp,
      '-defaultIPv6',
      '',
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${dnsManagementPort}`,
    ])
    writeFileSync(
      join(dir, 'pebble-config.json'),
      JSON.stringify(
        {
          pebble: {
            listenAddress: `${o.listenIp}:${port}`,
            managementListenAddress: `${o.listenIp}:${managementPort}`,
            certificate: join(dir, 'cert.pem'),
            privateKey: join(dir, 'key.pem'),
            // HTTP-01 is validated on the guest's real port 80 (nginx serves the webroot there).
            httpPort: 80,
            tlsPort: 443,
            ocspResponderURL: '',
            externalAccountBindingRequired: false,
          },
        },
        null,
        2,
      ),
    )
    const pebble = launch(
      'pebble',
      ['-config', join(dir, 'pebble-config.json'), '-dnsserver', `127.0.0.1:${dnsPort}`],
      // Validate at once instead of a random sleep; never reject a good nonce at random.
      { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
    )
    const directoryUrl = `https://${o.listenIp}:${port}/dir`
    let lastError = ''
    for (let i = 0; ; i++) {
      if (pebble.exitCode !== null) throw new Error(`pebble exited with ${pebble.exitCode}:\n${output}`)
      try {
        const r = await httpsGet(directoryUrl, tlsCaPem)
        if (r.status === 200 && r.body.includes('newOrder')) break
        lastError = `HTTP ${r.status}`
      } catch (err) {
        lastError = (err as Error).message
      }
      if (i >= 100) throw new Error(`pebble did not answer at ${directoryUrl}: ${lastError}\n${output}`)
      await new Promise((r) => setTimeout(r, 200))
    }
    return {
      directoryUrl,
      tlsCaPem,
      async rootCaPem() {
        // A few tries: on a busy machine pebble may take longer than one request's timeout.
        const url = `https://${o.listenIp}:${managementPort}/roots/0`
        let r: { status: number; body: string } | undefined
        for (let i = 0; i < 5 && r === undefined; i++) r = await httpsGet(url, tlsCaPem, 10_000).catch(() => undefined)
        if (r === undefined) throw new Error(`pebble's ${url} did not answer (5 tries)`)
        if (r.status !== 200 || !r.body.includes('BEGIN CERTIFICATE')) {
          throw new Error(`pebble's /roots/0 answered ${r.status}: ${r.body.slice(0, 200)}`)
        }
        return r.body
      },
      log: () => output,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}
