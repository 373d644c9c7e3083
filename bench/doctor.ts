/**
 * Doctor wall time against a loopback dovecot (imap, discovery and credential checks), and that
 * time divided by the slowest single check: how close the concurrent runner gets to its
 * slowest check (target ≤ 1.3). Run: npx tsx bench/doctor.ts [runs]
 */
import { runDoctor } from '../src/doctor/index.js'
import { METADATA_KEYS } from '../src/protocols/metadata-values.js'
import { mintTurnCredential } from '../src/protocols/turn-rest.js'
import { startDovecot } from '../test/helpers/dovecot.js'

const SECRET = 'bench-secret-0123456789abcdef'
const runs = Number(process.argv[2] ?? 20)

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

const cred = mintTurnCredential(SECRET, { ttlSeconds: 86400, nowMs: Date.now() })
const dovecot = await startDovecot({
  cert: { name: 'localhost', altNames: ['IP:127.0.0.1'] },
  metadata: {
    kind: 'file',
    values: {
      [METADATA_KEYS.irohrelay]: 'https://relay.example.org',
      [METADATA_KEYS.turn]: `turn.example.org:3478:${cred.username}:${cred.password}`,
    },
  },
})
try {
  const walls: number[] = []
  const ratios: number[] = []
  for (let i = 0; i < runs; i++) {
    const report = await runDoctor(
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
    if (report.status === 'fail') throw new Error(`a check failed: ${JSON.stringify(report.checks)}`)
    const wall = report.durationMs ?? 0
    const slowest = Math.max(1, ...report.checks.map((c) => c.durationMs))
    walls.push(wall)
    ratios.push(wall / slowest)
  }
  console.log(`doctor (imap+discovery+credentials, loopback dovecot), ${runs} runs`)
  console.log(`  wall time      median ${median(walls)} ms, max ${Math.max(...walls)} ms`)
  console.log(
    `  wall / slowest median ${median(ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)} (target <= 1.3)`,
  )
} finally {
  await dovecot.stop()
}
