/**
 * Config values reach dovecot.conf, main.cf, nginx, turnserver.conf, the dovecot users file and
 * command lines. Each one has a strict type, checked when the config is loaded (issue 9, items
 * 2-4); the template renderer refuses a multi-line value as the last line of defence.
 */
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import { ConfigError, parseConfigText } from '../../src/config/load.js'
import { renderConfig } from '../../src/config/render.js'
import type { Config } from '../../src/config/schema.js'
import { ExitCode } from '../../src/lib/errors.js'
import { renderTemplate, templateLines } from '../../src/server/template.js'
import { buildTestStack } from '../helpers/stack.js'

const SECRET = '0123456789abcdef0123'
const toml = (sections: Record<string, Record<string, unknown>>, top = '') => {
  const out = [`domain = "chat.example.org"`, top]
  const all: Record<string, Record<string, unknown>> = { ...sections, turn: { secret: SECRET, ...sections.turn } }
  for (const [name, keys] of Object.entries(all)) {
    out.push(`[${name}]`)
    for (const [k, v] of Object.entries(keys)) out.push(`${JSON.stringify(k)} = ${JSON.stringify(v)}`)
  }
  return `${out.join('\n')}\n`
}
const load = (sections: Record<string, Record<string, unknown>>, top = '') =>
  parseConfigText(toml(sections, top), 'cm.toml')
const refusal = (sections: Record<string, Record<string, unknown>>, top = ''): ConfigError => {
  try {
    load(sections, top)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).exitCode).toBe(ExitCode.cannotRun)
    expect((err as Error).message).not.toContain('\n')
    return err as ConfigError
  }
  throw new Error(`accepted: ${toml(sections, top)}`)
}

const stack = (config: Config) => buildTestStack(config)

describe('the proven exploits are refused when the config is loaded', () => {
  it('a newline in tls.cert (it added a directive to dovecot.conf, nginx, turnserver.conf and main.cf)', () => {
    const e = refusal({ tls: { mode: 'manual', cert: '/etc/ssl/c.pem\nssl = no', key: '/etc/ssl/k.pem' } })
    expect(e.message).toMatch(/^cm\.toml: tls\.cert must not contain control characters; found a newline \(U\+000A\)/)
    expect(e.message).toContain('(got "/etc/ssl/c.pem\\nssl = no")')
    expect(refusal({ tls: { mode: 'manual', cert: '/c.pem', key: '/k.pem\rx' } }).message).toMatch(
      /tls\.key .*carriage/,
    )
  })
  it('turn.external_ip = "1.2.3.4\\nno-auth" (it landed verbatim in turnserver.conf)', () => {
    expect(refusal({ turn: { external_ip: '1.2.3.4\nno-auth' } }).message).toMatch(
      /^cm\.toml: turn\.external_ip must not contain control characters; found a newline/,
    )
  })
  it('a doctor.user with a newline (it added a login to the dovecot users file)', () => {
    const e = refusal({ doctor: { user: 'doctor@chat.example.org\nroot@chat.example.org:{PLAIN}x' } })
    expect(e.message).toMatch(/^cm\.toml: doctor\.user must not contain control characters/)
  })
})

describe('every value has a strict type', () => {
  it.each([
    ['tls', 'cert', 'etc/ssl/c.pem', /tls\.cert must be an absolute path on the host/],
    ['tls', 'cert', '/etc/ssl/my cert.pem', /tls\.cert must be an absolute path/],
    ['tls', 'key', '/etc/ssl/../shadow', /tls\.key must be an absolute path/],
    ['tls', 'key', '/etc/ssl/k.pem;', /tls\.key must be an absolute path/],
    ['tls', 'acme_email', 'admin', /tls\.acme_email must be an e-mail address/],
    ['tls', 'acme_email', 'admin@example.org\n', /tls\.acme_email must not contain control characters/],
    ['tls', 'acme_email', 'a b@example.org', /tls\.acme_email must be an e-mail address/],
    ['tls', 'acme_directory', 'http://acme.example.org/dir', /must be a URL that starts with https:\/\//],
    ['tls', 'acme_directory', 'xhttps://acme.example.org/dir', /must be a URL that starts with https:\/\//],
    ['tls', 'acme_directory', 'https://u:p@acme.example.org/dir', /must not contain a user name or password/],
    ['tls', 'acme_directory', 'https://acme.example.org/dir x', /without spaces/],
    ['iroh', 'relay_url', 'https://relay.example.org/\nx', /iroh\.relay_url must not contain control characters/],
    [
      'iroh',
      'relay_url',
      'ftp://relay.example.org/',
      /iroh\.relay_url must be a URL that starts with http:\/\/ or https:\/\//,
    ],
    ['iroh', 'relay_url', 'https://relay.example.org/"x', /without spaces, quotes/],
    ['iroh', 'relay_url', 'https:relay.example.org', /must be a URL that starts with/],
    ['turn', 'external_ip', '1.2.3', /turn\.external_ip must be an IP address, or "public\/private"/],
    ['turn', 'external_ip', 'chat.example.org', /turn\.external_ip must be an IP address/],
    ['turn', 'external_ip', '203.0.113.5/10.0.0.5/1.1.1.1', /turn\.external_ip must be an IP address/],
    ['turn', 'external_ip', '203.0.113.5/2001:db8::1', /both of the same family/],
    ['turn', 'external_ip', 'fe80::1%eth0', /turn\.external_ip must be an IP address/],
    ['turn', 'host', 'turn.example.org\nx', /turn\.host must not contain control characters/],
    ['turn', 'host', 'turn example', /turn\.host must be a fully qualified host name/],
    ['turn', 'host', '2001:db8::1', /turn\.host .*IPv6/],
    ['doctor', 'user', 'doctor@other.example.org', /doctor\.user must be an address on chat\.example\.org/],
    ['doctor', 'user', 'doc:tor@chat.example.org', /doctor\.user must be an address on chat\.example\.org/],
    [
      'deploy',
      'destination',
      'root@chat.example.org\n-oProxyCommand=x',
      /deploy\.destination must not contain control/,
    ],
    ['deploy', 'iroh_relay_source', '/tmp/x\u001b[2J', /deploy\.iroh_relay_source .*an escape \(U\+001B\)/],
  ])('[%s] %s = %j is refused', (section, key, value, message) => {
    expect(refusal({ [section]: { ...(section === 'tls' ? { mode: 'manual' } : {}), [key]: value } }).message).toMatch(
      message,
    )
  })

  it('control characters are refused in every string, secrets are never echoed', () => {
    expect(() =>
      parseConfigText('domain = "chat.example.org\\n"\n[turn]\nsecret = "0123456789abcdef0123"\n', 'cm.toml'),
    ).toThrow(/domain must not contain control characters/)
    expect(refusal({ turn: { ttl: '24h\n' } }).message).toMatch(/turn\.ttl must not contain control characters/)
    expect(refusal({ mail: { max_mailbox_size: '500M\n' } }).message).toMatch(/mail\.max_mailbox_size/)
    const pw = refusal({ doctor: { password: 'hunter2\nhunter3' } }).message
    expect(pw).toMatch(/doctor\.password must not contain control characters/)
    expect(pw).not.toContain('hunter')
    expect(refusal({ turn: { secret: `${SECRET}\u0085` } }).message).not.toContain(SECRET)
    // A quoted key may hold a newline too: the message shows it escaped, on one line.
    expect(refusal({ turn: { 'por\nt': 1 } }).message).toContain('unknown key "turn.por\\nt"')
  })

  it('accepts the good values and keeps them as written', () => {
    const c = load({
      tls: {
        mode: 'manual',
        cert: '/etc/letsencrypt/live/chat.example.org/fullchain.pem',
        key: '/etc/ssl/private/mail+2025.key',
        acme_email: 'admin+acme@example.org',
        acme_directory: 'https://localhost:14000/dir',
      },
      turn: { host: 'Turn.Example.org', external_ip: '203.0.113.5/10.0.0.5' },
      iroh: { relay_url: 'http://203.0.113.5:3340' },
      doctor: { user: 'doctor@chat.example.org' },
    })
    expect(c.tls).toMatchObject({
      cert: '/etc/letsencrypt/live/chat.example.org/fullchain.pem',
      key: '/etc/ssl/private/mail+2025.key',
      acmeEmail: 'admin+acme@example.org',
      acmeDirectory: 'https://localhost:14000/dir',
    })
    expect(c.turn).toMatchObject({ host: 'turn.example.org', externalIp: '203.0.113.5/10.0.0.5' })
    expect(c.iroh.relayUrl).toBe('http://203.0.113.5:3340')
    expect(load({ turn: { external_ip: '2001:db8::5' } }).turn.externalIp).toBe('2001:db8::5')
    expect(load({ iroh: { relay_url: '' } }).iroh.relayUrl).toBe('')
    expect(load({ tls: { acme_email: '' } }).tls.acmeEmail).toBe('')
  })

  it('on an IP-only server the doctor is user@[IP], the form postfix delivers to; user@IP is read as it', () => {
    const ipOnly = (user: string) =>
      parseConfigText(`domain = "203.0.113.5"\n[turn]\nsecret = "${SECRET}"\n[doctor]\nuser = "${user}"\n`, 'cm.toml')
    expect(ipOnly('doctor@[203.0.113.5]').doctor.user).toBe('doctor@[203.0.113.5]')
    // What deploys before this kept in chatmail.toml.
    expect(ipOnly('Doctor@203.0.113.5').doctor.user).toBe('doctor@[203.0.113.5]')
    expect(() => ipOnly('doctor@[203.0.113.6]')).toThrow(
      /doctor\.user must be an address on 203\.0\.113\.5, e\.g\. doctor@\[203\.0\.113\.5\]/,
    )
    expect(() => ipOnly('doctor@203.0.113.5.example')).toThrow(/doctor\.user must be an address/)
  })
})

describe('chatmail init refuses the same values in its flags (usage error)', () => {
  const init = (extra: Partial<Parameters<typeof buildConfig>[0]>) => () =>
    buildConfig({ path: 'x', force: false, domain: 'chat.example.org', profile: 'dovecot', ...extra })
  it.each([
    [
      { tlsMode: 'manual' as const, cert: '/etc/ssl/c.pem\nssl = no', key: '/k.pem' },
      /--cert must not contain control characters; found a newline/,
    ],
    [{ tlsMode: 'manual' as const, cert: '/c.pem', key: 'k.pem' }, /--key must be an absolute path/],
    [{ relayUrl: 'https://relay.example.org\nx' }, /--relay-url must not contain control characters/],
    [{ relayUrl: 'gopher://relay.example.org' }, /--relay-url must be a URL that starts with http:\/\/ or https:\/\//],
    [{ acmeEmail: 'admin@example.org\nx' }, /--acme-email must not contain control characters/],
    [{ acmeEmail: 'admin' }, /--acme-email must be an e-mail address/],
    [{ domain: 'chat.example.org\n' }, /DOMAIN must not contain control characters; found a newline/],
  ])('%j', (extra, message) => {
    expect(init(extra)).toThrow(message)
    try {
      init(extra)()
    } catch (err) {
      expect((err as { exitCode: number }).exitCode).toBe(ExitCode.usage)
    }
  })
})

describe('the template renderer refuses a multi-line value (last line of defence)', () => {
  it('refuses newlines and other control characters in a value, naming the template and the placeholder', () => {
    expect(() => renderTemplate('cert={{c}}\n', { c: '/a.pem\nno-auth' }, 'coturn/turnserver.conf')).toThrow(
      'coturn/turnserver.conf: refusing the value of {{c}}: it contains a newline (U+000A) at position 7; a template value must be one line',
    )
    expect(() => renderTemplate('{{c}}', { c: 'a\rb' })).toThrow(/carriage return/)
    expect(() => renderTemplate('{{c}}', { c: 'a\u2028b' })).toThrow(/U\+2028/)
    expect(renderTemplate('{{c}}\n', { c: templateLines('a = 1', 'b = 2') })).toBe('a = 1\nb = 2\n')
    expect(() => renderTemplate('{{c}}', { c: templateLines('a = 1', 'b\n= 2') })).toThrow(/newline/)
  })
  it('a config that skipped the checks still cannot add a directive to any server config', async () => {
    const good = buildConfig({ path: 'x', force: false, domain: 'chat.example.org', profile: 'dovecot' })
    await expect(
      stack({ ...good, tls: { ...good.tls, mode: 'manual', cert: '/c.pem\nssl = no', key: '/k.pem' } }),
    ).rejects.toThrow(/refusing the value of \{\{tls_cert\}\}: it contains a newline/)
    await expect(stack({ ...good, turn: { ...good.turn, externalIp: '1.2.3.4\nno-auth' } })).rejects.toThrow(
      /refusing the value of \{\{external_ip_line\}\}/,
    )
    await expect(stack(good)).resolves.toBeDefined()
  })
})

describe('ports (item 3)', () => {
  it.each([
    [{ imap: { port: 143 } }, "imap.port = 143 collides with dovecot's IMAP (STARTTLS) port 143"],
    [{ turn: { port: 25 } }, "turn.port = 25 collides with postfix's SMTP port 25"],
    [{ turn: { tls_port: 443 } }, "turn.tls_port = 443 collides with nginx's HTTPS port 443"],
    [{ imap: { port: 22 } }, "imap.port = 22 collides with sshd's port 22"],
    [{ turn: { port: 50000 } }, "turn.port = 50000 collides with coturn's relay ports 49152-65535 (UDP)"],
    [{ iroh: { port: 3478 } }, 'iroh.port = 3478 collides with turn.port = 3478'],
    [{ turn: { tls_port: 3478 } }, 'turn.tls_port = 3478 collides with turn.port = 3478'],
    [{ iroh: { port: 993 } }, 'iroh.port = 993 collides with imap.port = 993'],
    [{ iroh: { port: 1000 } }, 'iroh.port = 1000: iroh-relay runs as its own user'],
  ])('%j is refused', (sections, message) => {
    const e = refusal(sections)
    expect(e.message).toContain(`cm.toml: ${message}`)
  })
  it('distinct free ports are fine; TCP-only ports may sit in the UDP relay range', () => {
    const c = load({ imap: { port: 9993 }, turn: { port: 3479, tls_port: 5350 }, iroh: { port: 50000 } })
    expect([c.imap.port, c.turn.port, c.turn.tlsPort, c.iroh.port]).toEqual([9993, 3479, 5350, 50000])
  })
})

describe('turn.ttl is capped at 5 days (item 4)', () => {
  it('refuses a longer ttl unless turn.allow_long_ttl = true says so', () => {
    expect(refusal({ turn: { ttl: '365d' } }).message).toBe(
      'cm.toml: turn.ttl = 365d is longer than 5d: a leaked TURN credential would stay valid that long; use a shorter ttl (Delta Chat fetches new ones 12h before they expire), or set turn.allow_long_ttl = true to accept it',
    )
    expect(refusal({ turn: { ttl: '5d1s' } }).message).toMatch(/turn\.ttl = 5d1s is longer than 5d/)
    expect(load({ turn: { ttl: '5d' } }).turn.ttlSeconds).toBe(432000)
    const long = load({ turn: { ttl: '30d', allow_long_ttl: true } })
    expect(long.turn).toMatchObject({ ttlSeconds: 30 * 86400, allowLongTtl: true })
    expect(refusal({ turn: { ttl: '30d', allow_long_ttl: 'yes' } }).message).toMatch(
      /allow_long_ttl must be true or false/,
    )
  })
  it('init renders a config that keeps the choice', () => {
    const long = load({ turn: { ttl: '30d', allow_long_ttl: true } })
    const again = parseConfigText(renderConfig(long), 'again.toml')
    expect(again.turn).toMatchObject({ ttlSeconds: 30 * 86400, allowLongTtl: true })
  })
})

describe('accounts.password_hash_rounds', () => {
  const serviceConf = async (c: Config) => {
    const s = await stack(c)
    const file = s.resources.find((r) => r.kind === 'file' && r.path === '/etc/chatmail/accounts.conf')
    return file?.kind === 'file' ? String(file.content) : ''
  }
  it('10000 by default; more may be asked for; fewer, or not a whole number, is refused', async () => {
    const c = load({})
    expect(c.accounts.passwordHashRounds).toBe(10_000)
    expect(await serviceConf(c)).toMatch(/^pbkdf2_rounds = 10000$/m)
    const strong = load({ accounts: { password_hash_rounds: 200_000 } })
    expect(strong.accounts.passwordHashRounds).toBe(200_000)
    expect(await serviceConf(strong)).toMatch(/^pbkdf2_rounds = 200000$/m)
    expect(parseConfigText(renderConfig(strong), 'again.toml').accounts.passwordHashRounds).toBe(200_000)
    expect(refusal({ accounts: { password_hash_rounds: 5000 } }).message).toMatch(/accounts\.password_hash_rounds/)
    expect(refusal({ accounts: { password_hash_rounds: 1.5 } }).message).toMatch(/accounts\.password_hash_rounds/)
  })
})
