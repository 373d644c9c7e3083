// Delta Chat core against a deployed server (a local Debian test host, IP-only; needs root):
//  1. configure time: a fresh account in the real core (deltachat-rpc-server 2.62.0), address +
//     password + the server's IP (core cannot guess the host from user@[IP]), median of 5; and from a sign-up dclogin: link;
//  2. message round trip core→core: two signed-up accounts after Secure-Join, one message at a
//     time in alternate directions, from sendMsg to the IncomingMsg event (median, p90 of 10).
// Goals: configure ≤ 2 s, round trip ≤ 1 s. The core runs fenced (test/helpers/deltachat.ts).
// Run after `npm run build`: flock /tmp/chatmail-e2e.lock npx tsx bench/deltachat.ts
import {
  coreSkipReason,
  createFence,
  loginParam,
  receiveText,
  secureJoin,
  signUp,
  signupMissing,
  startCore,
} from '../test/helpers/deltachat.js'
import { startDeployedHost } from '../test/helpers/deployed-host.js'

const skip = coreSkipReason()
if (skip) {
  console.log(`bench/deltachat: skipped: ${skip}`)
  process.exit(0)
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.9) - 1)]!
const fmt = (ms: number) => `${Math.round(ms)} ms`

const d = await startDeployedHost({ name: 'th-dc-86', index: 86, deployArgs: ['--no-doctor'] })
const fence = await createFence({ name: 'dc86', index: 87, hosts: [{ ip: d.host.host, names: [d.host.domain] }] })
const core = await startCore(fence)
try {
  const configure: number[] = []
  for (let i = 0; i < 5; i++) {
    const id = await core.rpc.addAccount()
    const t0 = performance.now()
    await core.rpc.addOrUpdateTransport(id, loginParam(d.doctor.user, d.doctor.password, true, d.host.host))
    configure.push(performance.now() - t0)
    await core.rpc.removeAccount(id)
  }
  console.log(
    `configure, address + password (self-signed IP-only server): median ${fmt(median(configure))} of ${configure.map(fmt).join(', ')} (goal ≤ 2 s)`,
  )

  const missing = await signupMissing(d.host.host)
  if (missing) {
    console.log(`configure from the sign-up link, message round trip: skipped: ${missing}`)
  } else {
    const a = await core.rpc.addAccount()
    const b = await core.rpc.addAccount()
    const ua = await signUp(core, a, d.host.host)
    const ub = await signUp(core, b, d.host.host)
    console.log(`configure from a dclogin: link: ${fmt(ua.configureMs)}, ${fmt(ub.configureMs)} (goal ≤ 2 s)`)
    await core.rpc.startIo(a)
    await core.rpc.startIo(b)
    const t0 = performance.now()
    const chatB = await secureJoin(core, a, b)
    console.log(`Secure-Join: ${fmt(performance.now() - t0)}`)
    const first = receiveText(core, a, 'warm-up')
    await core.rpc.miscSendTextMessage(b, chatB, 'warm-up')
    const chatA = (await first).chatId
    const trips: number[] = []
    for (let i = 0; i < 10; i++) {
      const [from, to, chat] = i % 2 === 0 ? [a, b, chatA] : [b, a, chatB]
      const text = `round trip ${i}`
      const t = performance.now()
      const arriving = receiveText(core, to, text)
      await core.rpc.miscSendTextMessage(from, chat, text)
      const got = await arriving
      trips.push(performance.now() - t)
      if (!got.msg.showPadlock) throw new Error(`message ${i} arrived without the padlock`)
    }
    console.log(
      `message core→core (send → IncomingMsg, encrypted): median ${fmt(median(trips))}, p90 ${fmt(p90(trips))} of 10 (goal ≤ 1 s)`,
    )
  }
} finally {
  await core.close()
  await fence.close()
  await d.stop()
}
