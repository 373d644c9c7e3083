import { describe, expect, it } from 'vitest'
import { checkDomain } from '../../src/config/domain.js'
import { importIni } from '../../src/config/ini.js'
import { buildConfig } from '../../src/config/init.js'
import { parseConfigText } from '../../src/config/load.js'
import { renderConfig } from '../../src/config/render.js'

const base = (extra = '') => `domain = "chat.example.org"\n[turn]\nsecret = "0123456789abcdef0123"\n${extra}`

describe('domain validation', () => {
  it.each(['chat.example.org', 'Chat.Example.ORG.', 'a.b', '_test.example.org', 'xn--bcher-kva.example'])(
    'accepts %s',
    (d) => {
      expect(checkDomain(d).ok).toBe(true)
    },
  )
  it('accepts IPv4 literals as IP-only servers', () => {
    expect(checkDomain('203.0.113.5')).toEqual({ ok: true, domain: '203.0.113.5', kind: 'ipv4' })
  })
  it.each([
    ['localhost', 'fully qualified'],
    ['2001:db8::1', 'IPv6'],
    ['https://chat.example.org', 'bare name'],
    ['root@chat.example.org', 'bare name'],
    ['-bad.example.org', 'DNS label'],
    ['a..b', 'DNS label'],
    ['256.1.1.1', 'IPv4'],
    ['example.123', 'numeric'],
    ['', 'empty'],
  ])('rejects %j', (d, why) => {
    const r = checkDomain(d)
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.reason).toContain(why)
  })
})

describe('config file', () => {
  it('applies defaults', () => {
    const c = parseConfigText(base(), 'x.toml')
    expect(c).toMatchObject({
      domain: 'chat.example.org',
      profile: 'dovecot',
      tls: { mode: 'acme' },
      turn: { host: 'chat.example.org', port: 3478, tlsPort: 5349, ttlSeconds: 86400 },
      iroh: { relayUrl: 'https://chat.example.org', port: 3340 },
      imap: { port: 993 },
    })
  })
  it('names the file, the key and what is allowed', () => {
    expect(() => parseConfigText(base('prot = 1\n'), 'cm.toml')).toThrow(
      'cm.toml: unknown key "turn.prot"; allowed in [turn]: secret, host, port, tls_port, ttl, allow_long_ttl, external_ip',
    )
    expect(() => parseConfigText(`${base()}\n[tls]\nmode = "letsencrypt"\n`, 'cm.toml')).toThrow(
      /cm.toml: tls.mode must be one of: acme, self-signed, manual \(got "letsencrypt"\)/,
    )
    expect(() => parseConfigText(base('port = 70000\n'), 'cm.toml')).toThrow(/turn.port must be from 1 to 65535/)
    expect(() => parseConfigText('domain = "chat.example.org"\n', 'cm.toml')).toThrow(/missing key "turn"/)
    expect(() => parseConfigText('domain = "x"\n[turn]\nsecret="0123456789abcdef0123"', 'cm.toml')).toThrow(
      /domain must be a fully qualified/,
    )
    expect(() => parseConfigText(base('[tls]\n').replace('[turn]', 'bogus = 1\n[turn]'), 'cm.toml')).toThrow(
      /unknown key "bogus"; allowed in the top level: domain, profile/,
    )
    expect(() => parseConfigText('domain = \n', 'cm.toml')).toThrow(/cm.toml: line 1, column/)
    expect(() => parseConfigText(base('ttl = "0s"\n'), 'cm.toml')).toThrow(/turn.ttl must be a duration/)
  })
  it('never echoes the secret in an error', () => {
    let message = ''
    try {
      parseConfigText('domain = "chat.example.org"\n[turn]\nsecret = "north-but-short"\n', 'cm.toml')
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toContain('turn.secret must be at least 16')
    expect(message).not.toContain('north-but-short')
  })
  it('never echoes doctor.password in an error, whatever its type', () => {
    for (const value of ['98765432123', '["hunter2-in-a-list"]', 'true', '{ x = "hunter2-in-a-table" }']) {
      let message = ''
      try {
        parseConfigText(base(`[doctor]\nuser = "d@chat.example.org"\npassword = ${value}\n`), 'cm.toml')
      } catch (err) {
        message = (err as Error).message
      }
      expect(message, value).toContain('doctor.password must be a string')
      expect(message, value).not.toMatch(/98765432123|hunter2/)
    }
  })
  it('refuses profile = "madmail" at load, saying what to set: deploy host cannot install it', () => {
    const text =
      'domain = "chat.example.org"\nprofile = "madmail"\n[turn]\nsecret = "0123456789abcdef0123456789abcdef0123456789a"\n'
    expect(() => parseConfigText(text, 'c.toml')).toThrow(
      /^c\.toml: profile "madmail" cannot be deployed by chatmail, which installs the dovecot stack only: set profile = "dovecot"/,
    )
    expect(parseConfigText(text.replace('madmail', 'dovecot'), 'c.toml').profile).toBe('dovecot')
  })
  it('refuses chatmail-turn public secret', () => {
    expect(() => parseConfigText('domain = "chat.example.org"\n[turn]\nsecret = "north"\n', 'c')).toThrow(/turn.secret/)
  })
  it('round-trips what init renders', () => {
    const c = buildConfig({ path: 'x', force: false, domain: 'chat.example.org', profile: 'dovecot' })
    expect(c.turn.secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(parseConfigText(renderConfig(c), 'x')).toEqual(c)
    const ip = buildConfig({ path: 'x', force: false, domain: '203.0.113.5', profile: 'dovecot' })
    expect(ip.tls.mode).toBe('self-signed')
    expect(ip.iroh.relayUrl).toBe('http://203.0.113.5:3340')
    expect(parseConfigText(renderConfig(ip), 'x')).toEqual(ip)
  })
  it('gives each server its own secret', () => {
    const a = buildConfig({ path: 'x', force: false, domain: 'a.example', profile: 'dovecot' })
    const b = buildConfig({ path: 'x', force: false, domain: 'a.example', profile: 'dovecot' })
    expect(a.turn.secret).not.toBe(b.turn.secret)
  })
})

describe('cmdeploy chatmail.ini import', () => {
  it('maps the keys with a meaning and lists the rest', () => {
    const r = importIni(
      `[params]\nmail_domain = chat.example.org\nmax_user_send_per_minute = 60\ntls_external_cert_and_key = /etc/c.pem /etc/k.pem\niroh_relay = https://iroh.example.org\nmax_message_size = 1000000\n# comment\npassthrough_senders =\n`,
      'chatmail.ini',
    )
    expect(r).toMatchObject({
      domain: 'chat.example.org',
      tlsMode: 'manual',
      cert: '/etc/c.pem',
      key: '/etc/k.pem',
      relayUrl: 'https://iroh.example.org',
      maxMessageSize: 1000000,
      maxUserSendPerMinute: 60,
    })
    expect(r.ignored).toEqual(['passthrough_senders'])
    expect(() => importIni('[params]\nmail_domain = a.org\nmax_user_send_burst_size = 0\n', 'chatmail.ini')).toThrow(
      /max_user_send_burst_size must be a whole number/,
    )
  })
  it('rejects a file that is not a cmdeploy ini', () => {
    expect(() => importIni('[other]\na = 1\n', 'x.ini')).toThrow(/no \[params\] section/)
    expect(() => importIni('just text\n', 'x.ini')).toThrow(/x.ini line 1/)
  })
})

describe('manual TLS', () => {
  it('needs both paths', () => {
    expect(() => parseConfigText(`${base()}\n[tls]\nmode = "manual"\ncert = "/c.pem"\n`, 'm.toml')).toThrow(
      'm.toml: tls.mode "manual" needs tls.cert and tls.key (paths on the host)',
    )
    expect(() =>
      buildConfig({ path: 'x', force: false, domain: 'a.example', profile: 'dovecot', tlsMode: 'manual' }),
    ).toThrow(/--cert PATH --key PATH|certificate and key/)
  })
})
