// `npm run demo`: a local Debian 13 host with systemd (scripts/testhost.sh), `chatmail deploy host`
// into it, the doctor's verdict, how to reach and remove it, and last the server's sign-up link
// (with its QR code on a terminal). Needs root (nspawn, netns).
// DEMO_DEBIAN=12 makes a Debian 12 host instead.
// The real iroh-relay release cannot be downloaded in this sandbox: the demo serves a tarball
// holding the iroh-relay STAND-IN (test/stand-in-relay), with its own sha256.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { loadConfig } from '../src/config/load.js'
import { qrTerminal, signupLink } from '../src/signup/links.js'
import { serveStandInMirror } from '../test/helpers/standin-tarball.js'
import { DEBIAN_SUITES, debianSuite, parseEnvOutput } from '../test/helpers/testhost.js'

const release = process.env.DEMO_DEBIAN ?? '13'
const suite = debianSuite(release)
if (suite === undefined) {
  process.stderr.write(`demo: DEMO_DEBIAN=${release} is not supported; use 12 or 13\n`)
  process.exit(2)
}
// One host per release, each with its own name, address and config folder: a Debian 12 demo never
// reuses a running Debian 13 one (and says "Debian 12" about it).
const own =
  suite === 'bookworm'
    ? { name: 'chatmail-demo-12', index: '10', dir: '.demo-12' }
    : { name: 'chatmail-demo', index: '9', dir: '.demo' }
const name = process.env.TESTHOST_NAME ?? own.name
const index = process.env.TESTHOST_INDEX ?? own.index
const env = { ...process.env, TESTHOST_NAME: name, TESTHOST_INDEX: index, TESTHOST_SUITE: suite }
const dir = resolve(process.env.DEMO_DIR ?? own.dir)
const bin = resolve('bin/run.js')
const say = (m: string) => process.stderr.write(`demo: ${m}\n`)

if (process.getuid?.() !== 0) {
  say('needs root: it starts a systemd-nspawn host in its own network namespace')
  process.exit(3)
}
say('installing what the test host needs (scripts/test-deps.sh)')
execFileSync('bash', ['scripts/test-deps.sh'], { stdio: 'inherit' })
say(`starting the local Debian ${DEBIAN_SUITES[suite]} (${suite}) host ${name}`)
const up = execFileSync('bash', ['scripts/testhost.sh', 'up'], {
  env,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
})
const host = parseEnvOutput(up)
const ip = host.TESTHOST_HOST as string

mkdirSync(dir, { recursive: true })
const mirror = await serveStandInMirror(join(dir, 'iroh-relay-standin'), host.TESTHOST_RUNNER_IP as string, 8099)

// Asynchronous: this process also serves the relay tarball the host downloads while the CLI runs.
const cli = (args: string[]): Promise<number> =>
  new Promise((done) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: dir, stdio: 'inherit', env: process.env })
    child.on('exit', (code) => done(code ?? 1))
  })
if (!existsSync(join(dir, 'chatmail.toml'))) await cli(['init', ip])
const status = await cli([
  'deploy',
  'host',
  `root@${ip}`,
  '--yes',
  '-i',
  host.TESTHOST_KEY as string,
  '--known-hosts',
  host.TESTHOST_KNOWN_HOSTS as string,
  '--iroh-relay-source',
  mirror.source,
  '--iroh-relay-sha256',
  mirror.sha256,
])
mirror.close()
// The server's self-signed certificate, for running the doctor by hand.
const caFile = join(dir, 'server-ca.pem')
if (status === 0) {
  const pem = execFileSync('bash', ['scripts/testhost.sh', 'ssh', 'cat /etc/chatmail/tls/fullchain.pem'], {
    env,
    encoding: 'utf8',
  })
  writeFileSync(caFile, pem)
}
const stop = `TESTHOST_NAME=${name} TESTHOST_INDEX=${index} TESTHOST_SUITE=${suite} bash scripts/testhost.sh stop --purge`
process.stdout.write(`
The chatmail server runs in a local Debian ${DEBIAN_SUITES[suite]} host at ${ip} (only this machine can reach it).
  config:      ${join(dir, 'chatmail.toml')}
  check it:    (cd ${dir} && node ${bin} doctor --ca ${caFile})
               or deploy again (npm run demo): nothing changes, and the doctor runs at the end
  log in:      ${host.TESTHOST_SSH}
  remove it:   ${stop}
`)
if (status === 0) {
  // What a person signs up with (the same link `chatmail invite` prints, without a token). The demo
  // server is self-signed: the link is its sign-up page, which hands Delta Chat a dclogin: link.
  const link = signupLink((await loadConfig(join(dir, 'chatmail.toml'))).config)
  process.stdout.write(`  sign up:     ${link}\n`)
  if (process.stdout.isTTY) process.stdout.write(`${qrTerminal(link)}\n`)
}
process.exit(status)
