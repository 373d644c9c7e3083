/**
 * Captures the messages a REAL Delta Chat core (deltachat-rpc-server, fenced) sends through a
 * freshly deployed test host, as they arrive in the recipients' Maildirs, for the unit tests of
 * chatmail-filter (test/fixtures/mail/core-*.eml): a Secure-Join between two fresh accounts,
 * an encrypted message and a group message. Core 2.62 sends nothing in the clear to a chatmail
 * server (XCHATMAIL): a chat with an address-only contact, even an unencrypted group, fails with
 * "e2e encryption unavailable"; the plaintext fixtures are written by hand.
 * Run as root: npx tsx scripts/capture-core-mail.ts [OUT_DIR]   (test host th-filt-90, fence 91)
 * Only for refreshing the fixtures, against a host without the filter (CHATMAIL_NO_FILTER=1
 * deploys without it once the filter exists).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createFence, hostHttps, receiveText, secureJoin, signUp, startCore } from '../test/helpers/deltachat.js'
import { startDeployedHost } from '../test/helpers/deployed-host.js'
import { guestShell, startTestHost, stopTestHost } from '../test/helpers/testhost.js'

const out = process.argv[2] ?? 'test/fixtures/mail'
const OPTS = { name: 'th-filt-90', index: 90 }
// CAPTURE_REUSE=1: host 90 is up and deployed already (a deploy takes long on a busy machine).
const d = process.env.CAPTURE_REUSE
  ? { host: await startTestHost(OPTS), stop: () => stopTestHost(OPTS) }
  : await startDeployedHost({ ...OPTS, deployArgs: ['--no-doctor'], deployTimeoutMs: 1_500_000 })
const fence = await createFence({ name: 'filt91', index: 91, hosts: [{ ip: d.host.host, names: [d.host.domain] }] })
const core = await startCore(fence)
try {
  // Core deletes what it fetched from a chatmail server: a blind copy of everything goes to a
  // third account, which no core reads.
  const copy = JSON.parse((await hostHttps(d.host.host, 'POST', '/new')).body) as { email: string }
  await guestShell(d.host, `postconf -e 'always_bcc = ${copy.email}' && postfix reload`)
  const [a, b] = [await core.rpc.addAccount(), await core.rpc.addAccount()]
  const ua = await signUp(core, a, d.host.host)
  const ub = await signUp(core, b, d.host.host)
  for (const id of [a, b]) await core.rpc.startIo(id)
  const chatB = await secureJoin(core, a, b)
  const arriving = receiveText(core, a, 'hello from b')
  await core.rpc.miscSendTextMessage(b, chatB, 'hello from b')
  await arriving
  // A group of b's with a.
  const aInB = (await core.rpc.getChatContacts(b, chatB)).find((id) => id !== 1) as number
  const group = await core.rpc.createGroupChat(b, 'filter fixtures', false)
  await core.rpc.addContactToChat(b, group, aInB)
  const inGroup = receiveText(core, a, 'hello group')
  await core.rpc.miscSendTextMessage(b, group, 'hello group')
  await inGroup
  await new Promise((r) => setTimeout(r, 2000))
  const listing = await guestShell(
    d.host,
    'cd /home/vmail/mail && find . -type f -path "*/cur/*" -o -type f -path "*/new/*"',
  )
  mkdirSync(out, { recursive: true })
  let n = 0
  // In delivery order (Maildir names start with the time). The Secure-Join step of each is in its
  // encrypted part; the order and the packets tell them apart: the first two are encrypted to the
  // invite's shared secret (SKESK), the rest to keys (PKESK). The fixtures were named by hand.
  const files = listing.split('\n').filter(Boolean)
  files.sort((x, y) => (x.split('/').pop() as string).localeCompare(y.split('/').pop() as string))
  for (const f of files) {
    const text = await guestShell(d.host, `base64 -w0 /home/vmail/mail/${f.replace(/^\.\//, '')}`)
    const raw = Buffer.from(text.trim(), 'base64')
    const name = `core-${++n}.eml`
    writeFileSync(join(out, name), raw)
    process.stderr.write(`${name} ${raw.length} bytes (${f})\n`)
  }
  process.stderr.write(`accounts: ${ua.addr} ${ub.addr}\n`)
} finally {
  await core.close().catch(() => {})
  await fence.close().catch(() => {})
  await d.stop()
}
