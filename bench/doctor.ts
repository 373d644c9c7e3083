/**
 * Doctor wall time against loopback servers, and that time divided by the slowest single check:
 * how close the concurrent runner gets to its slowest check (issue #4 target: <= 1.3).
 *   npx tsx bench/doctor.ts [runs]
 *
 * Two set-ups, each run `runs` times (medians and maxima printed):
 * 1. imap + discovery + credentials against a dovecot with the metadata in a file dict (the
 *    earlier figure);
 * 2. the doctor's groups that a complete loopback server serves (all but tls and mail, which need
 *    submission and HTTPS on their standard ports): dovecot (implicit TLS) whose METADATA comes
 *    from chatmail-metadata, a coturn with the same secret, and the iroh-relay stand-in
 *    (test/stand-in-relay). It prints how many checks ran.
 *
 * Besides wall / slowest, it prints wall / critical path: the critical path is the longest chain of
 * checks that wait for each other (`after`), summed; no runner can beat it, so wall / critical path
 * is the runner's own overhead, while wall / slowest also contains the chain the checks form
 * (imap.login → metadata.turn → turn.allocate.tls).
 */

import { runDoctor } from '../src/doctor/index.js'
import type { CheckDef, DoctorOptions, DoctorReport } from '../src/doctor/model.js'
import { loadChecks } from '../src/doctor/registry.js'
import { METADATA_KEYS } from '../src/protocols/metadata-values.js'
import { mintTurnCredential } from '../src/protocols/turn-rest.js'
import { startDovecot } from '../test/helpers/dovecot.js'
import { startLoopbackServer } from '../test/helpers/loopback-server.js'

const SECRET = 'bench-secret-0123456789abcdef'
const runs = Number(process.argv[2] ?? 20)

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

/** The longest sum of durations along `after` chains (checks that ran; skipped ones count 0). */
function criticalPath(defs: readonly CheckDef[], report: DoctorReport): number {
  const byId = new Map(defs.map((d) => [d.id, d]))
  const took = new Map(report.checks.map((c) => [c.id, c.durationMs]))
  const memo = new Map<string, number>()
  const chain = (id: string): number => {
    const known = memo.get(id)
    if (known !== undefined) return known
    const deps = (byId.get(id)?.after ?? []).filter((d) => took.has(d))
    const total = (took.get(id) ?? 0) + Math.max(0, ...deps.map(chain))
    memo.set(id, total)
    return total
  }
  return Math.max(1, ...report.checks.map((c) => chain(c.id)))
}

interface Figures {
  walls: number[]
  slowest: number[]
  slowestIds: string[]
  ratios: number[]
  pathRatios: number[]
}

async function measure(
  label: string,
  options: DoctorOptions,
  select: { only?: string[]; skip?: string[] },
): Promise<void> {
  const defs = await loadChecks()
  const f: Figures = { walls: [], slowest: [], slowestIds: [], ratios: [], pathRatios: [] }
  let ran = 0
  for (let i = 0; i < runs; i++) {
    const report = await runDoctor(options, select)
    ran = report.checks.filter((c) => c.status !== 'skip').length
    const notOk = report.checks.filter((c) => c.status === 'fail' || c.status === 'warn')
    if (notOk.length > 0) throw new Error(`${label}: not every check passed: ${JSON.stringify(notOk)}`)
    const wall = report.durationMs ?? 0
    const top = report.checks.reduce((a, b) => (b.durationMs > a.durationMs ? b : a))
    f.walls.push(wall)
    f.slowest.push(Math.max(1, top.durationMs))
    f.slowestIds.push(top.id)
    f.ratios.push(wall / Math.max(1, top.durationMs))
    f.pathRatios.push(wall / criticalPath(defs, report))
  }
  const counts = new Map<string, number>()
  for (const id of f.slowestIds) counts.set(id, (counts.get(id) ?? 0) + 1)
  const usual = [...counts].sort((a, b) => b[1] - a[1]).map(([id, n]) => `${id} ×${n}`)
  console.log(`doctor (${label}): ${ran} checks, ${runs} runs`)
  console.log(`  wall time        median ${median(f.walls)} ms, max ${Math.max(...f.walls)} ms`)
  console.log(
    `  slowest check    median ${median(f.slowest)} ms, max ${Math.max(...f.slowest)} ms (${usual.join(', ')})`,
  )
  console.log(
    `  wall / slowest   median ${median(f.ratios).toFixed(2)}, max ${Math.max(...f.ratios).toFixed(2)} (target <= 1.3)`,
  )
  console.log(
    `  wall / crit.path median ${median(f.pathRatios).toFixed(2)}, max ${Math.max(...f.pathRatios).toFixed(2)} (runner overhead; 1.0 = none)`,
  )
}

/** 1. The earlier figure: imap, discovery and credentials against a file-dict dovecot. */
async function localGroups(): Promise<void> {
  const cred = mintTurnCredential(SECRET, { ttlSeconds: 86400, nowMs: Date.now() })
  const dovecot = await startDovecot({
    cert: { name: 'localhost', altNames: ['IP:127.0.0.1'] },
    extraConfig: 'imap_capability = +XCHATMAIL',
    metadata: {
      kind: 'file',
      values: {
        [METADATA_KEYS.irohrelay]: 'https://relay.example.org',
        [METADATA_KEYS.turn]: `turn.example.org:3478:${cred.username}:${cred.password}`,
      },
    },
  })
  try {
    await measure(
      'imap+discovery+credentials, loopback dovecot',
      {
        domain: '127.0.0.1',
        imapHost: dovecot.host,
        imapPort: dovecot.imapsPort,
        user: dovecot.user,
        password: dovecot.password,
        turnSecret: SECRET,
        ca: dovecot.certPem,
        insecure: false,
        timeoutMs: 5000,
      },
      { only: ['imap', 'discovery', 'credentials'] },
    )
  } finally {
    await dovecot.stop()
  }
}

/** 2. Every group against dovecot + chatmail-metadata + coturn + the relay stand-in. */
async function wholeDoctor(): Promise<void> {
  const server = await startLoopbackServer({ secret: SECRET })
  const { dovecot, relay } = server
  try {
    const options: DoctorOptions = {
      domain: '127.0.0.1',
      imapHost: dovecot.host,
      imapPort: dovecot.imapsPort,
      user: dovecot.user,
      password: dovecot.password,
      turnSecret: SECRET,
      ca: server.caPem,
      insecure: false,
      timeoutMs: 5000,
    }
    // As `chatmail doctor` runs with a chatmail.toml: the relay URL is known, so the relay checks
    // start at once and metadata.irohrelay only compares the advertised value with it; and the
    // TURN connections (with their nonces) are made while discovery runs.
    const served = { skip: ['tls', 'mail'] }
    await measure(
      'imap to relay, with chatmail.toml (the usual run)',
      {
        ...options,
        expectedRelayUrl: relay.url,
        expectedTurn: { host: '127.0.0.1', port: server.coturn.port, tlsPort: server.coturn.tlsPort },
      },
      served,
    )
    // Without a config, the relay URL comes from discovery: login → GETMETADATA → relay checks.
    await measure('imap to relay, discovery only (no config)', options, served)
  } finally {
    await server.stop()
  }
}

await localGroups()
await wholeDoctor()
