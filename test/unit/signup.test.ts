import { describe, expect, it } from 'vitest'
import { type Config, DEFAULT_ACCOUNTS, DEFAULT_EXPIRY } from '../../src/config/schema.js'
import { deliveryLines, loginMapLines, ownSenderLines } from '../../src/deploy/mail-routing.js'
import { dcaccountLink, qrTerminal, signupLink } from '../../src/signup/links.js'
import { signupPage } from '../../src/signup/page.js'
import { inviteFailure, inviteFromAnswer, parseInvite } from '../../src/signup/remote.js'

function config(domain: string, over: Partial<Config['accounts']> = {}, tls: Config['tls']['mode'] = 'acme'): Config {
  return {
    domain,
    profile: 'dovecot',
    tls: { mode: tls, acmeEmail: '', acmeDirectory: '' },
    turn: { secret: 'x'.repeat(20), host: domain, port: 3478, tlsPort: 5349, ttlSeconds: 86400 },
    iroh: { relayUrl: `https://${domain}`, port: 3340 },
    imap: { port: 993 },
    mail: {
      maxMessageSize: 1,
      maxMailboxSize: '1M',
      comment: '',
      maxSmtpRecipients: 1000,
      admin: 'ops@example.org',
      ...DEFAULT_EXPIRY,
      maxUserSendPerMinute: 60,
      maxUserSendBurst: 10,
    },
    accounts: { ...DEFAULT_ACCOUNTS, ...over },
    deploy: {},
    doctor: {},
    backup: {},
  }
}

describe('sign-up page', () => {
  it('shows the dcaccount: link and its QR code (SVG, no script) on a server with a domain', async () => {
    const html = await signupPage(config('chat.example.org'))
    expect(html).toContain('href="dcaccount:https://chat.example.org/new"')
    expect(html).toMatch(/<svg[^>]*>/)
    expect(html).not.toContain('<script')
    expect(html).toContain('mailto:ops@example.org')
  })

  it('on a self-signed or IP-only server, offers our own script that shows the dclogin: link', async () => {
    const html = await signupPage(config('203.0.113.5', {}, 'self-signed'))
    expect(html).toContain('<script src="/signup.js"></script>')
    expect(html).not.toContain('dcaccount:')
  })

  it("a self-signed server on a `_` domain shows the dcaccount: QR code (core's strict checks accept it by the name)", async () => {
    const html = await signupPage(config('_chat.example.org', {}, 'self-signed'))
    expect(html).toContain('href="dcaccount:https://_chat.example.org/new"')
    expect(html).toMatch(/<svg[^>]*>/)
    expect(html).not.toContain('<script')
    expect(signupLink(config('_chat.example.org', {}, 'self-signed'), 'tok')).toBe(
      'dcaccount:https://_chat.example.org/new?i=tok',
    )
  })

  it('says so when registration is closed or by invitation', async () => {
    expect(await signupPage(config('chat.example.org', { registration: 'closed' }))).toContain(
      'does not take new accounts',
    )
    const invite = await signupPage(config('chat.example.org', { registration: 'invite' }))
    expect(invite).toContain('need an invite link')
    expect(invite).not.toContain('dcaccount:')
  })

  it('escapes what it shows', async () => {
    const c = config('chat.example.org')
    c.mail.admin = 'a<b>@example.org'
    expect(await signupPage(c)).not.toContain('a<b>')
  })

  it('renders a QR code for a terminal', () => {
    const qr = qrTerminal(dcaccountLink('chat.example.org', 'tok_en-1234567890abc'))
    expect(qr.split('\n').length).toBeGreaterThan(10)
    expect(dcaccountLink('chat.example.org', 'tok_en-1234567890abc')).toBe(
      'dcaccount:https://chat.example.org/new?i=tok_en-1234567890abc',
    )
  })

  it('the sign-up link (invite, demo): dcaccount:, or the page on a self-signed server, which hands out dclogin:', () => {
    expect(signupLink(config('chat.example.org'))).toBe('dcaccount:https://chat.example.org/new')
    expect(signupLink(config('chat.example.org'), 'tok')).toBe('dcaccount:https://chat.example.org/new?i=tok')
    expect(signupLink(config('chat.example.org', {}, 'self-signed'))).toBe('https://chat.example.org/')
    expect(signupLink(config('203.0.113.5'))).toBe('https://203.0.113.5/')
    expect(signupLink(config('203.0.113.5'), 'a b')).toBe('https://203.0.113.5/?i=a%20b')
  })
})

describe('chatmail invite: what the server answers reaches the terminal printable (issue 23 item 10a)', () => {
  const answer = (over: Record<string, unknown>) =>
    JSON.stringify({
      ok: true,
      token: 'tok_en-1234567890abc',
      uses: 1,
      expires: 1_800_000_000,
      registration: 'invite',
      ...over,
    })

  it('an invite: its registration with escape sequences, C1 controls and bidi overrides shows them escaped', () => {
    const invite = parseInvite(answer({ registration: '\u001b]0;owned\u0007open\u009b2J\r\n\u202eclosed' }))
    expect(invite?.registration).toBe('\\x1b]0;owned\\x07open\\x9b2J\\x0d\\x0a\\u{202e}closed')
    expect(parseInvite(answer({}))).toEqual({
      token: 'tok_en-1234567890abc',
      uses: 1,
      expires: 1_800_000_000,
      registration: 'invite',
    })
  })

  it('numbers that are no dates or counts are no invite (no RangeError printing a stack)', () => {
    expect(parseInvite(answer({ expires: 1e300 }))).toBeUndefined()
    expect(parseInvite(answer({ uses: 1.5 }))).toBeUndefined()
    expect(parseInvite(answer({ uses: -1 }))).toBeUndefined()
  })

  it('exit codes: the service refusing (its exit 1) is exit 1 with its reason; no answer at all is exit 3', () => {
    expect(inviteFromAnswer({ code: 0, stdout: answer({}), stderr: '' }).token).toBe('tok_en-1234567890abc')
    const refused = { code: 1, stdout: '{"ok":false,"reason":"registration is closed"}\n', stderr: '' }
    expect(() => inviteFromAnswer(refused)).toThrow(
      expect.objectContaining({
        exitCode: 1,
        message: 'the server refused to create an invite: registration is closed',
      }),
    )
    const missing = { code: 127, stdout: '', stderr: 'node: cannot open chatmail-accounts.js\n' }
    expect(() => inviteFromAnswer(missing)).toThrow(
      expect.objectContaining({
        exitCode: 3,
        message: expect.stringMatching(/^the server did not create an invite: node/),
      }),
    )
    // Exit 0 with an answer that is no invite: not a refusal the service made, so exit 3.
    expect(() => inviteFromAnswer({ code: 0, stdout: 'garbage', stderr: '' })).toThrow(
      expect.objectContaining({ exitCode: 3 }),
    )
  })

  it('a refusal: the last line of what the server wrote to stderr, escaped', () => {
    expect(inviteFailure('noise\nerror: \u001b[2J\u001b[1;1Hall checks ok\u0007\n')).toBe(
      '\\x1b[2J\\x1b[1;1Hall checks ok\\x07',
    )
    expect(inviteFailure('')).toBe('')
  })
})

describe('postfix routing of our own addresses', () => {
  const socket = '/run/chatmail-accounts/socketmap.socket'
  it('a domain: virtual mailboxes checked against the doctor and chatmail-accounts', () => {
    const lines = deliveryLines('chat.example.org', 'doctor@chat.example.org', socket)
    expect(lines).toContain('virtual_mailbox_domains = chat.example.org')
    expect(lines).toContain(
      'virtual_mailbox_maps = inline:{ {doctor@chat.example.org=ok} }, proxy:socketmap:unix:/run/chatmail-accounts/socketmap.socket:mailbox',
    )
    expect(lines).not.toContain('resolve_numeric_domain')
  })

  it('an IP: local class (address literal of the host) to LMTP, numeric domains allowed', () => {
    const lines = deliveryLines('203.0.113.5', 'doctor@203.0.113.5', socket)
    expect(lines).toContain('resolve_numeric_domain = yes')
    expect(lines).toContain('proxy_interfaces = 203.0.113.5')
    expect(lines).toContain('local_transport = lmtp:unix:private/dovecot-lmtp')
    expect(lines).toMatch(/^local_recipient_maps = inline:\{ \{doctor@203\.0\.113\.5=ok\} \}, proxy:socketmap:/m)
  })

  it('login map and own senders: only our domain, both spellings of an IP', () => {
    const ip = loginMapLines('203.0.113.5')
    const re = new RegExp(ip.slice(1, ip.indexOf('$/') + 1))
    expect(re.test('alice@[203.0.113.5]')).toBe(true)
    expect(re.test('alice@203.0.113.5')).toBe(true)
    expect(re.test('alice@203.0.113.55')).toBe(false)
    expect(re.test('alice@203x0.113.5')).toBe(false)
    const group = '$' + '{1}' // postfix's pcre back-reference, not a template placeholder
    expect(ip).toContain(`${group}@[203.0.113.5], ${group}@203.0.113.5`)
    expect(loginMapLines('chat.example.org')).toBe(`/^(.+@chat\\.example\\.org)$/i ${group}`)
    expect(ownSenderLines('chat.example.org')).toMatch(/^\/@chat\\\.example\\\.org\$\/i REJECT /)
  })
})
