// Deploy benchmark on a fresh local Debian host (scripts/testhost.sh, needs root):
//  1. a fresh deploy, split into what Debian does (apt-get install, service starts, certificate
//     generation) and our own overhead (SSH, facts, plan, uploads, file writes, validation);
//  2. a no-op redeploy: wall time and sequential SSH round trips.
// Targets: overhead <= 15% of the fresh deploy; no-op <= 5 s and <= 4 round trips.
// Once on Debian 12 and once on Debian 13 (BENCH_DEBIAN=13 or =12 picks one), a fresh host each.
// Run after `npm run build`: npx tsx bench/deploy.ts
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stackBuilder } from '../src/app/deploy-host.js'
import { buildConfig } from '../src/config/init.js'
import { deploy } from '../src/deploy/engine.js'
import { SshSession } from '../src/ssh/index.js'
import { buildStandInTarball } from '../test/helpers/standin-tarball.js'
import { DEBIAN_SUITES, type DebianSuite, debianSuite, startTestHost, stopTestHost } from '../test/helpers/testhost.js'

const HOSTS: Record<DebianSuite, { name: string; index: number }> = {
  bookworm: { name: 'th-bench', index: 8 },
  trixie: { name: 'th-d13-bench', index: 48 },
}
const suites = (process.env.BENCH_DEBIAN ?? '12,13').split(',').map((r) => {
  const suite = debianSuite(r.trim())
  if (!suite) throw new Error(`BENCH_DEBIAN: ${r} is not 12 or 13`)
  return suite
})

for (const suite of suites) {
  console.log(`Debian ${DEBIAN_SUITES[suite]} (${suite}):`)
  await benchRelease(suite)
}

async function benchRelease(suite: DebianSuite): Promise<void> {
  const OPTS = { ...HOSTS[suite], suite }
  const host = await startTestHost(OPTS)
  try {
    const dir = mkdtempSync(join(tmpdir(), 'chatmail-bench-'))
    const tarball = buildStandInTarball(dir)
    const config = buildConfig({ path: 'x', force: false, domain: host.host, profile: 'dovecot' })
    const loaded = { path: join(dir, 'chatmail.toml'), config }
    const spec = await stackBuilder(
      {
        loaded,
        acceptNewHostKey: false,
        skipDnsCheck: true,
        dryRun: false,
        doctor: false,
        irohRelaySource: join(tarball.dir, 'iroh-relay-v0.35.0-x86_64-unknown-linux-musl.tar.gz'),
        irohRelaySha256: tarball.sha256,
      },
      'bench-doctor-password',
    )
    const connect = () =>
      SshSession.connect({ host: host.host, user: 'root', keyFile: host.keyFile, knownHostsFile: host.knownHostsFile })

    const t0 = performance.now()
    const session = await connect()
    const fresh = await deploy({ session, spec, domain: config.domain })
    const wall = performance.now() - t0
    session.close()
    const t = fresh.applied?.timings ?? {}
    const debian = (t.packages ?? 0) + (t.services ?? 0) + (t.commands ?? 0) + (t['commands-after'] ?? 0)
    const overhead = wall - debian
    console.log(
      `fresh deploy: ${(wall / 1000).toFixed(1)} s wall, ${fresh.plan.changed} changes, ${fresh.roundTrips} round trips`,
    )
    console.log(
      `  apt-get install ${((t.packages ?? 0) / 1000).toFixed(1)} s, service starts ${((t.services ?? 0) / 1000).toFixed(1)} s, certificate ${((t.commands ?? 0) / 1000).toFixed(1)} s`,
    )
    console.log(
      `  our own overhead ${(overhead / 1000).toFixed(1)} s = ${((100 * overhead) / wall).toFixed(1)}% of the deploy (target <= 15%)`,
    )

    const noops: number[] = []
    let trips = 0
    for (let i = 0; i < 5; i++) {
      const t1 = performance.now()
      const s = await connect()
      const r = await deploy({ session: s, spec, domain: config.domain })
      s.close()
      noops.push(performance.now() - t1)
      trips = r.roundTrips
      if (r.plan.changed !== 0) throw new Error(`no-op redeploy changed ${r.plan.changed} resources`)
    }
    noops.sort((a, b) => a - b)
    console.log(
      `no-op redeploy (connect included), median of 5: ${(noops[2]! / 1000).toFixed(2)} s, ${trips} sequential round trips (targets <= 5 s, <= 4)`,
    )
  } finally {
    await stopTestHost(OPTS)
  }
}
